package dashboard_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIDescribesAnswers: the served OpenAPI document lists every
// dataset, and every path's real answer (over the fixture's published rows)
// holds to its schema: types, required fields, numbers as numbers.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "admin", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	code, body := get(t, c, s.url+"/api/v1/openapi.json")
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct{ Version string }
		Paths   map[string]struct {
			Get struct {
				Responses map[string]struct {
					Content map[string]struct {
						Schema map[string]any `json:"schema"`
					} `json:"content"`
				} `json:"responses"`
			} `json:"get"`
		} `json:"paths"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Version != "1" {
		t.Fatalf("openapi.json: %d %.300s", code, body)
	}
	for _, want := range []string{"/api/v1/kpis", "/api/v1/products", "/api/v1/products/{id}", "/api/v1/categories", "/api/v1/search", "/api/v1/funnel_segments", "/api/v1/referrers"} {
		if _, ok := doc.Paths[want]; !ok {
			t.Errorf("openapi.json does not describe %s", want)
		}
	}
	checked := 0
	for path, item := range doc.Paths {
		if path == "/api/v1/openapi.json" {
			continue
		}
		schema := item.Get.Responses["200"].Content["application/json"].Schema
		if schema == nil {
			t.Errorf("%s: no JSON schema for 200", path)
			continue
		}
		u := s.url + strings.ReplaceAll(path, "{id}", "P-1") + "?range=28d"
		code, body := get(t, c, u)
		var answer any
		if code != http.StatusOK || json.Unmarshal(body, &answer) != nil {
			t.Errorf("%s: %d %.200s", path, code, body)
			continue
		}
		if err := validate(schema, answer, "$"); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if data, _ := answer.(map[string]any)["data"]; data == nil || fmt.Sprint(data) == "[]" {
			t.Errorf("%s: no data to check", path)
		}
		checked++
	}
	if checked < 18 {
		t.Errorf("checked %d paths, want every one of the API's 18", checked)
	}
	// A schema that is wrong is caught: a count described as text.
	if validate(map[string]any{"type": "string"}, 3.0, "$") == nil || validate(map[string]any{"type": "integer"}, 2.5, "$") == nil ||
		validate(map[string]any{"type": "object", "required": []any{"x"}}, map[string]any{}, "$") == nil {
		t.Error("the validator lets a wrong answer pass")
	}
}

// validate holds v (decoded JSON) to the subset of JSON Schema that the
// document uses: type, nullable, properties, required, items,
// additionalProperties, enum, minimum.
func validate(schema map[string]any, v any, at string) error {
	if v == nil {
		if schema["nullable"] == true {
			return nil
		}
		return fmt.Errorf("%s: null", at)
	}
	switch schema["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", at, v)
		}
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: no %q", at, r)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		extra, _ := schema["additionalProperties"].(map[string]any)
		for k, val := range m {
			if p, ok := props[k].(map[string]any); ok {
				if err := validate(p, val, at+"."+k); err != nil {
					return err
				}
			} else if extra != nil {
				if err := validate(extra, val, at+"."+k); err != nil {
					return err
				}
			} else if props != nil {
				return fmt.Errorf("%s: %q is not described", at, k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", at, v)
		}
		items, _ := schema["items"].(map[string]any)
		for i, e := range a {
			if err := validate(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %T %v, want a string", at, v, v)
		}
	case "number", "integer":
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%s: %T %v, want a number", at, v, v)
		}
		if schema["type"] == "integer" && f != math.Trunc(f) {
			return fmt.Errorf("%s: %v, want a whole number", at, f)
		}
		if min, ok := schema["minimum"].(float64); ok && f < min {
			return fmt.Errorf("%s: %v below %v", at, f, min)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, want true or false", at, v)
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v not one of %v", at, v, enum)
	}
	return nil
}
