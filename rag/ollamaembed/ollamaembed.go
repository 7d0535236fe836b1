package ollamaembed

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/talos-ironclad/talos"
)

// Defaults.
const (
	// DefaultURL is Ollama's default address.
	DefaultURL = "http://127.0.0.1:11434"
	// DefaultModel is a small, common embedding model (384 dimensions).
	DefaultModel = "all-minilm"
	// DefaultTimeout bounds one embedding call.
	DefaultTimeout = 60 * time.Second
	// DefaultBatch is the number of texts per request.
	DefaultBatch = 64
)

// Config configures New.
type Config struct {
	URL        string        // default DefaultURL
	Model      string        // default DefaultModel
	Dimension  int           // expected dimension; 0 accepts what the model returns
	Timeout    time.Duration // default DefaultTimeout
	Batch      int           // texts per request, default DefaultBatch
	HTTPClient *http.Client  // optional
}

// Embedder calls Ollama. It is safe for concurrent use.
type Embedder struct {
	cfg    Config
	client *api.Client
}

// New validates cfg and returns an embedder (no request is made).
func New(cfg Config) (*Embedder, error) {
	const op = "ollamaembed.New"
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Dimension < 0 || cfg.Batch < 0 || cfg.Timeout < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "dimension %d, batch %d and timeout %s must not be negative", cfg.Dimension, cfg.Batch, cfg.Timeout)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Ollama URL %q is not an http(s) URL with a host", cfg.URL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Embedder{cfg: cfg, client: api.NewClient(u, hc)}, nil
}

// Dimension implements rag.Embedder (0 when not configured).
func (e *Embedder) Dimension() int { return e.cfg.Dimension }

// DefaultThreshold is the minimum cosine similarity of a retrieved memory
// with Ollama embeddings: the spec's 0.7 (rag.DefaultThreshold), which
// assumes a semantic embedder. It has not been measured here (no Ollama
// embedding model ran in the calibration of rag/testdata/recall.json); set
// RetrieverConfig.Threshold after measuring with your model.
const DefaultThreshold = 0.7

// SimilarityThreshold is DefaultThreshold (rag.ThresholdEmbedder).
func (e *Embedder) SimilarityThreshold() float64 { return DefaultThreshold }

// Name implements rag.Embedder.
func (e *Embedder) Name() string { return "ollama/" + e.cfg.Model }

// Embed implements rag.Embedder.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	const op = "ollamaembed.Embed"
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.cfg.Batch {
		part := texts[start:min(start+e.cfg.Batch, len(texts))]
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		resp, err := e.client.Embed(cctx, &api.EmbedRequest{Model: e.cfg.Model, Input: part})
		cancel()
		if err != nil {
			return nil, talos.E(talos.CodeLocalModelLoad, op, fmt.Sprintf("Ollama at %s could not embed with model %s; check that it runs and the model is pulled", e.cfg.URL, e.cfg.Model), err)
		}
		if len(resp.Embeddings) != len(part) {
			return nil, talos.Errorf(talos.CodeModelBadResponse, op, "Ollama returned %d embeddings for %d texts", len(resp.Embeddings), len(part))
		}
		for i, v := range resp.Embeddings {
			if e.cfg.Dimension != 0 && len(v) != e.cfg.Dimension {
				return nil, talos.Errorf(talos.CodeConfigInvalid, op, "embedding dimension mismatch: model %s returned %d values for text %d, configured %d", e.cfg.Model, len(v), start+i, e.cfg.Dimension)
			}
			out = append(out, v)
		}
	}
	return out, nil
}
