package chatapi_test

import (
	"fmt"
	"strings"

	"github.com/talos-ironclad/talos/internal/chatapi"
)

// The request parser names every problem of a body at once.
func ExampleParseRequest() {
	req, err := chatapi.ParseRequest(strings.NewReader(`{"message":"hello","session_id":"s1"}`), 1024)
	fmt.Println(req.Message, req.SessionID, err)
	_, err = chatapi.ParseRequest(strings.NewReader(`{"msg":"hello","session_id":1}`), 1024)
	fmt.Println(err)
	// Output:
	// hello s1 <nil>
	// field "msg" is unknown: allowed fields are message and session_id; field message is missing: it holds the text to send; field session_id is 1: it must be a string (or absent to start a session)
}

// Decoding the streamed answer.
func ExampleReadEvents() {
	events, _ := chatapi.ReadEvents(strings.NewReader("event: token\ndata: {\"text\":\"Hel\"}\n\nevent: token\ndata: {\"text\":\"lo\"}\n\nevent: done\ndata: {\"answer\":\"Hello\"}\n\n"))
	for _, ev := range events {
		fmt.Println(ev.Name, string(ev.Data))
	}
	// Output:
	// token {"text":"Hel"}
	// token {"text":"lo"}
	// done {"answer":"Hello"}
}
