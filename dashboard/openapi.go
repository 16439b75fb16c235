package dashboard

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// apiVersion is the API's version: its paths start /api/v1, and a change
// that breaks a client gets a new one.
const apiVersion = "1"

// textColumns are the datasets' columns that hold names, not numbers.
var textColumns = []string{"term", "day", "category", "daypart", "funnel", "device", "segment_kind", "segment",
	"page_type", "slot", "variant", "list_kind", "dimension", "value", "entry_page", "referrer_host"}

// openAPI describes the API (OpenAPI 3.0) from the types and datasets that
// answer it, so that the two cannot drift apart; TestOpenAPIDescribesAnswers
// holds real answers to it.
func openAPI() map[string]any {
	common := []any{
		param("site", "a site with published data (default: the first)", map[string]any{"type": "string"}),
		param("range", "the period", map[string]any{"type": "string", "enum": []string{"week", "4w", "month", "3m", "mtd", "7d", "28d", "90d", "custom"}}),
		param("from", "custom range: first day, YYYY-MM-DD", map[string]any{"type": "string", "format": "date"}),
		param("to", "custom range: last day, YYYY-MM-DD", map[string]any{"type": "string", "format": "date"}),
		param("format", "csv for a CSV file instead of JSON", map[string]any{"type": "string", "enum": []string{"json", "csv"}}),
	}
	noise := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "number"},
		"description": "the σ of the differential-privacy noise in each figure, as its releases recorded it"}
	paths := map[string]any{
		"/api/v1/kpis": get("Daily KPIs of the period, each with its noise", common, arrayOf(map[string]any{
			"type": "object", "required": []string{"day", "visitors", "sessions", "pageviews", "orders", "buyers", "revenue"},
			"properties": map[string]any{
				"day": map[string]any{"type": "string", "format": "date"}, "visitors": integer(), "sessions": integer(), "pageviews": integer(),
				"orders": integer(), "buyers": integer(), "revenue": map[string]any{"type": "number"}, "noise_sigma": noise,
			}})),
		"/api/v1/products": get("Top products of the period", append(slices.Clone(common),
			param("by", "the ranking", map[string]any{"type": "string", "enum": []string{"views", "adds", "purchases", "revenue", "visitors"}}),
			param("category", "one category only", map[string]any{"type": "string"}),
			param("limit", "how many (1 to 1000, default 20)", map[string]any{"type": "integer", "minimum": 1, "maximum": 1000})),
			arrayOf(schemaOf(reflect.TypeFor[ProductRow]()))),
		"/api/v1/products/{id}": get("One product over the period", append(slices.Clone(common),
			map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}),
			schemaOf(reflect.TypeFor[ProductDetail]())),
		"/api/v1/categories": get("Category views by device", append(slices.Clone(common), filterParams["device"]), arrayOf(schemaOf(reflect.TypeFor[CategoryShare]()))),
		"/api/v1/openapi.json": map[string]any{"get": map[string]any{"summary": "This description", "responses": map[string]any{
			"200": map[string]any{"description": "OpenAPI 3.0", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}}}},
	}
	for name, ds := range datasets {
		row := map[string]any{"type": "object", "required": ds.header, "properties": map[string]any{}}
		for _, col := range ds.header {
			t := map[string]any{"type": "number"}
			if slices.Contains(textColumns, col) {
				t = map[string]any{"type": "string"}
			}
			row["properties"].(map[string]any)[col] = t
		}
		summary := "The " + strings.ReplaceAll(name, "_", " ") + " widget's rows"
		params := slices.Clone(common)
		for _, p := range ds.params {
			params = append(params, filterParams[p])
		}
		paths["/api/v1/"+name] = get(summary, params, arrayOf(row))
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "herd dashboard API", "version": apiVersion,
			"description": "Published, k-anonymous and noised figures only; a logged-in session (cookie) with a role that may read them. Counts of visitor-days count a shopper once a day."},
		"paths": paths,
	}
}

// filterParams are the filters a dataset may apply (dataset.params).
var filterParams = map[string]any{
	"device":  param("device", "one device's cells", map[string]any{"type": "string", "enum": devices}),
	"variant": param("variant", "one layout variant published in the period", map[string]any{"type": "string"}),
	"source":  param("source", "one traffic source", map[string]any{"type": "string", "enum": sources}),
}

func param(name, desc string, schema map[string]any) map[string]any {
	return map[string]any{"name": name, "in": "query", "description": desc, "schema": schema}
}

func integer() map[string]any { return map[string]any{"type": "integer", "minimum": 0} }

func arrayOf(items map[string]any) map[string]any {
	return map[string]any{"type": "array", "nullable": true, "items": items}
}

// get is a GET operation whose JSON answer is {"data": data, "privacy": …}.
func get(summary string, params []any, data map[string]any) map[string]any {
	envelope := map[string]any{"type": "object", "required": []string{"data", "privacy"}, "properties": map[string]any{
		"data": data, "privacy": map[string]any{"type": "string", "description": "the privacy statement the figures were published under"}}}
	return map[string]any{"get": map[string]any{
		"summary": summary, "parameters": params,
		"responses": map[string]any{
			"200": map[string]any{"description": "the figures", "content": map[string]any{
				"application/json": map[string]any{"schema": envelope}, "text/csv": map[string]any{"schema": map[string]any{"type": "string"}}}},
			"400": errorAnswer("a parameter out of range, named"), "401": errorAnswer("no session"),
			"403": errorAnswer("the role may not read this"), "503": errorAnswer("ClickHouse unavailable; try again"),
		}}}
}

func errorAnswer(desc string) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
		"type": "object", "required": []string{"error"}, "properties": map[string]any{"error": map[string]any{"type": "string"}}}}}}
}

// schemaOf is the JSON schema of a Go type as encoding/json writes it.
func schemaOf(t reflect.Type) map[string]any {
	if t == reflect.TypeFor[time.Time]() {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		return integer()
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return arrayOf(schemaOf(t.Elem()))
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Pointer:
		s := schemaOf(t.Elem())
		s["nullable"] = true
		return s
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		addFields(t, props, &required)
		return map[string]any{"type": "object", "required": required, "properties": props}
	}
	panic("dashboard: no schema for " + t.String())
}

// addFields adds t's JSON fields, embedded structs' included.
func addFields(t reflect.Type, props map[string]any, required *[]string) {
	for f := range t.Fields() {
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			addFields(f.Type, props, required)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
		if !strings.Contains(opts, "omitempty") {
			*required = append(*required, name)
		}
	}
}

func (d *Dashboard) apiOpenAPI(c *fiber.Ctx) error { return c.JSON(openAPI()) }
