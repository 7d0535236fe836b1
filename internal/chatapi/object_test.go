package chatapi

import (
	"strings"
	"testing"
)

// Decode names every problem of one object at once, shows a wrong value
// as the JSON that was sent (clipped), and treats null as absent.
func TestObjectSpecDecode(t *testing.T) {
	spec := ObjectSpec{What: "the thing", Hint: "send {}", Fields: []string{"a", "b"}, Required: map[string]string{"a": "the a"}}
	long := "[" + strings.Repeat("1,", 40) + "1]"
	f, problems, err := spec.Decode([]byte(`{"b":` + long + `,"a":null,"c\n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	got := Problems(problems).Error()
	want := `field "c\n" is unknown: allowed fields are a and b; field a is missing: it holds the a; field b is [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1…: it must be a string`
	if got != want || len(f) != 0 {
		t.Fatalf("got %q (fields %v)\nwant %q", got, f, want)
	}
	f, problems, err = spec.Decode([]byte(" {\"a\":\"x\",\"b\":null}\n"))
	if err != nil || len(problems) != 0 || f["a"] != "x" || len(f) != 1 {
		t.Fatalf("fields %v problems %v err %v", f, problems, err)
	}
	for in, frag := range map[string]string{
		"\xff":     "the thing is not valid UTF-8",
		"[]":       "the thing is not a JSON object (found a JSON array); send {}",
		"null":     "the thing is not a JSON object (null); send {}",
		`{"a":"x"`: "the thing is not a JSON object (it ends too early); send {}",
		`{} {}`:    "the thing holds more than one JSON value",
	} {
		if _, _, err := spec.Decode([]byte(in)); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("%q: %v, want %q", in, err, frag)
		}
	}
	if Problems(nil) != nil {
		t.Error("no problems must be no error")
	}
}
