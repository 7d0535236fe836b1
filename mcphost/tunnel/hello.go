package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// ConnectAction is the action a capability token must grant for its
// holder to open a tunnel session.
const ConnectAction = "mcp/tunnel/connect"

// MaxHelloBytes bounds the hello frame (one JSON line with the token).
const MaxHelloBytes = gateway.MaxTokenBytes + 4<<10

// HelloTimeout bounds how long the serving side waits for the hello and the
// connecting side for its answer.
const HelloTimeout = 10 * time.Second

// helloFrame is the first line a client sends when the server requires a
// token: a request for ConnectAction signed by the client's key.
type helloFrame struct {
	Version int             `json:"v"`
	Request gateway.Request `json:"request"`
}

// answerFrame is the server's answer to a hello.
type answerFrame struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// ReadHello reads one hello frame from r: a JSON line of at most
// MaxHelloBytes holding version 1 and a signed request. It reads nothing
// beyond the line's newline.
func ReadHello(r *bufio.Reader) (gateway.Request, error) {
	const op = "tunnel.ReadHello"
	line, err := readLine(r, MaxHelloBytes)
	if err != nil {
		return gateway.Request{}, talos.E(talos.CodeInputInvalid, op, "the hello frame could not be read", err)
	}
	var h helloFrame
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return gateway.Request{}, talos.E(talos.CodeInputInvalid, op, "the hello frame is not a JSON object {\"v\":1,\"request\":{…}}", err)
	}
	if h.Version != 1 {
		return gateway.Request{}, talos.Errorf(talos.CodeInputInvalid, op, "the hello frame's version v=%d is not supported (allowed: 1)", h.Version)
	}
	return h.Request, nil
}

// readLine reads up to and including '\n', at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, errors.New("the line is longer than the limit")
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// admit reads the hello from conn and authorizes it with v: a request for
// ConnectAction, signed by the authorized peer, with a fresh nonce and a
// valid token. It answers the client either way and returns the reader to
// serve the session from and the admitted token.
func admit(conn net.Conn, v *gateway.Verifier, authorized gateway.PeerID) (*bufio.Reader, string, error) {
	const op = "tunnel.Serve"
	_ = conn.SetDeadline(time.Now().Add(HelloTimeout))
	defer conn.SetDeadline(time.Time{}) //nolint:errcheck // cleared for the session
	br := bufio.NewReader(conn)
	req, err := ReadHello(br)
	// Every refusal is recorded: a hello that did not arrive whole, one of
	// the wrong form (checked first, so that the decision recorded is the
	// verdict), and Authorize's own.
	if err != nil {
		v.Refuse(ConnectAction, "", err)
	} else if t, perr := gateway.Parse(req.Token); perr == nil && (req.Action != ConnectAction || t.Subject != authorized) {
		err = talos.Errorf(talos.CodeUnauthorized, op, "the hello must ask for %s with a token whose subject is the authorized peer", ConnectAction)
		v.Refuse(req.Action, req.Token, err)
	} else {
		_, err = v.Authorize(req)
	}
	a := answerFrame{OK: err == nil}
	if err != nil {
		a.Error = err.Error()
	}
	b, _ := json.Marshal(a)
	if _, werr := conn.Write(append(b, '\n')); werr != nil && err == nil {
		err = werr
	}
	return br, req.Token, err
}

// hello sends a signed request for ConnectAction with token and waits for
// the server's answer.
func hello(ctx context.Context, conn net.Conn, id *gateway.Identity, token string) error {
	req, err := gateway.NewRequest(id, token, ConnectAction)
	if err != nil {
		return err
	}
	return SendHello(ctx, conn, req)
}

// SendHello sends req as the hello frame on conn and returns the server's
// refusal, if any. Dial sends it itself when given a token; SendHello is for
// a client that signs its own request.
func SendHello(ctx context.Context, conn net.Conn, req gateway.Request) error {
	const op = "tunnel.Dial"
	deadline := time.Now().Add(HelloTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{}) //nolint:errcheck // cleared for the session
	b, err := json.Marshal(helloFrame{Version: 1, Request: req})
	if err != nil {
		return talos.E(talos.CodeInputInvalid, op, "encoding the hello failed", err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return talos.E(talos.CodeUnauthorized, op, "sending the hello failed", err)
	}
	// Read the answer byte by byte: nothing after its newline is ours.
	var line []byte
	one := make([]byte, 1)
	for len(line) <= 64<<10 {
		if _, err := io.ReadFull(conn, one); err != nil {
			return talos.E(talos.CodeUnauthorized, op, "the server closed the tunnel instead of answering the hello (is the peer authorized?)", err)
		}
		if one[0] == '\n' {
			var a answerFrame
			if err := json.Unmarshal(line, &a); err != nil {
				return talos.E(talos.CodeUnauthorized, op, "the server's answer to the hello is not JSON", err)
			}
			if !a.OK {
				return talos.Errorf(talos.CodeUnauthorized, op, "the server refused the token: %s", clipAnswer(a.Error))
			}
			return nil
		}
		line = append(line, one[0])
	}
	return talos.Errorf(talos.CodeUnauthorized, op, "the server's answer to the hello is longer than 64 KiB")
}

// clipAnswer quotes the peer's text (control characters escaped) and
// clips it to 500 bytes.
func clipAnswer(s string) string {
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return strconv.Quote(s)
}
