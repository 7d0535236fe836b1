package ollama

import (
	"context"
	"errors"
	"net/http"

	"github.com/ollama/ollama/api"
)

// Has reports whether Ollama has model pulled (/api/show answers it; a 404
// means it does not), with Ollama's own name resolution ("llama3" is
// "llama3:latest"). It makes Client a vram.Catalog, so the VRAM mutex refuses
// a model Ollama does not have before unloading the resident one.
func (c *Client) Has(ctx context.Context, model string) (bool, error) {
	_, err := c.api.Show(ctx, &api.ShowRequest{Model: model})
	if err == nil {
		return true, nil
	}
	var se api.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, c.mapErr(ctx, "ollama.Has", model, err)
}
