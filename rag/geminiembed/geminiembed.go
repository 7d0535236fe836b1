package geminiembed

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/genai"

	"github.com/talos-ironclad/talos"
)

// Defaults.
const (
	// DefaultModel is Gemini's text embedding model.
	DefaultModel = "gemini-embedding-001"
	// DefaultDimension is the requested output dimensionality.
	DefaultDimension = 768
	// DefaultBatch is the number of texts per request (the API accepts up to 100).
	DefaultBatch = 100
	// DefaultTimeout bounds one request.
	DefaultTimeout = 60 * time.Second
)

// Config configures New.
type Config struct {
	APIKey     string        // required
	Model      string        // default DefaultModel
	Dimension  int           // default DefaultDimension
	TaskType   string        // optional, e.g. RETRIEVAL_DOCUMENT
	BaseURL    string        // optional API endpoint (tests)
	Batch      int           // default DefaultBatch
	Timeout    time.Duration // default DefaultTimeout
	HTTPClient *http.Client  // optional
}

// Embedder calls Gemini. It is safe for concurrent use.
type Embedder struct {
	cfg    Config
	client *genai.Client
}

// New validates cfg and creates the client (no request is made).
func New(ctx context.Context, cfg Config) (*Embedder, error) {
	const op = "geminiembed.New"
	if cfg.APIKey == "" {
		return nil, talos.Errorf(talos.CodeSecretMissing, op, "the Gemini API key is empty; set it (GEMINI_API_KEY) to use Gemini embeddings")
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.Dimension == 0 {
		cfg.Dimension = DefaultDimension
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Dimension < 0 || cfg.Batch < 0 || cfg.Batch > 100 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "dimension %d must be positive and batch %d between 1 and 100", cfg.Dimension, cfg.Batch)
	}
	cc := &genai.ClientConfig{APIKey: cfg.APIKey, Backend: genai.BackendGeminiAPI, HTTPClient: cfg.HTTPClient}
	if cfg.BaseURL != "" {
		cc.HTTPOptions.BaseURL = cfg.BaseURL
	}
	client, err := genai.NewClient(ctx, cc)
	if err != nil {
		return nil, talos.E(talos.CodeGeminiConnection, op, "cannot create the Gemini client", err)
	}
	return &Embedder{cfg: cfg, client: client}, nil
}

// Dimension implements rag.Embedder.
func (e *Embedder) Dimension() int { return e.cfg.Dimension }

// DefaultThreshold is the minimum cosine similarity of a retrieved memory
// with Gemini embeddings: the spec's 0.7 (rag.DefaultThreshold), which
// assumes a semantic embedder. It has not been measured here (no Gemini
// embedding model ran in the calibration of rag/testdata/recall.json); set
// RetrieverConfig.Threshold after measuring with your model.
const DefaultThreshold = 0.7

// SimilarityThreshold is DefaultThreshold (rag.ThresholdEmbedder).
func (e *Embedder) SimilarityThreshold() float64 { return DefaultThreshold }

// Name implements rag.Embedder.
func (e *Embedder) Name() string { return fmt.Sprintf("gemini/%s-%d", e.cfg.Model, e.cfg.Dimension) }

// Embed implements rag.Embedder.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	const op = "geminiembed.Embed"
	dim := int32(e.cfg.Dimension)
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.cfg.Batch {
		part := texts[start:min(start+e.cfg.Batch, len(texts))]
		contents := make([]*genai.Content, len(part))
		for i, t := range part {
			contents[i] = genai.NewContentFromText(t, genai.RoleUser)
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		resp, err := e.client.Models.EmbedContent(cctx, e.cfg.Model, contents,
			&genai.EmbedContentConfig{OutputDimensionality: &dim, TaskType: e.cfg.TaskType})
		cancel()
		if err != nil {
			return nil, talos.E(talos.CodeGeminiConnection, op, "Gemini could not embed "+fmt.Sprint(len(part))+" texts with model "+e.cfg.Model, err)
		}
		if len(resp.Embeddings) != len(part) {
			return nil, talos.Errorf(talos.CodeModelBadResponse, op, "Gemini returned %d embeddings for %d texts", len(resp.Embeddings), len(part))
		}
		for i, emb := range resp.Embeddings {
			if emb == nil || len(emb.Values) != e.cfg.Dimension {
				n := 0
				if emb != nil {
					n = len(emb.Values)
				}
				return nil, talos.Errorf(talos.CodeConfigInvalid, op, "embedding dimension mismatch: Gemini returned %d values for text %d, configured %d", n, start+i, e.cfg.Dimension)
			}
			out = append(out, emb.Values)
		}
	}
	return out, nil
}
