package clickhouse

import (
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// ResultTypeError is a result value whose Go type is not the one the code
// expects: a schema that drifted from the code. Select returns it.
type ResultTypeError struct {
	Column string
	Want   string
	Got    string
}

func (e *ResultTypeError) Error() string {
	return fmt.Sprintf("clickhouse: result column %q holds %s, want %s", e.Column, e.Got, e.Want)
}

// Get returns the value in column col, row row of a result block as a T.
// It is meant for Select's callback: a value of another type stops the
// callback and Select returns a *ResultTypeError, instead of the process
// dying on a failed type assertion.
func Get[T any](b *proto.Block, col, row int) T {
	v := b.Columns[col].Row(row, false)
	t, ok := v.(T)
	if !ok {
		panic(&ResultTypeError{Column: b.Columns[col].Name(), Want: fmt.Sprintf("%T", t), Got: fmt.Sprintf("%T", v)})
	}
	return t
}

// callScan calls fn on b, turning a Get type mismatch into its error.
func callScan(fn func(*proto.Block) error, b *proto.Block) (err error) {
	defer func() {
		if r := recover(); r != nil {
			var te *ResultTypeError
			if e, ok := r.(error); ok && errors.As(e, &te) {
				err = te
				return
			}
			panic(r)
		}
	}()
	return fn(b)
}
