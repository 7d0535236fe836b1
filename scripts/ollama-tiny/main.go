// Command ollama-tiny writes a tiny random-weight llama model (about 0.5 MB,
// GGUF) and its Modelfile, so the test harness can run a real Ollama server
// with a model without downloading any weights. The answers are gibberish;
// every API call works. It is a module of its own because it needs the
// Ollama version the harness builds (v0.6.5), not the one Talos imports.
//
//	go run . DIR   # writes DIR/tiny.gguf and DIR/Modelfile
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/ollama/ollama/fs/ggml"
)

const (
	embd   = 64
	ff     = 128
	blocks = 2
	heads  = 4
)

type f32 []float32

func (v f32) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []float32(v))
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ollama-tiny DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	rng := rand.New(rand.NewPCG(1, 2))

	// Vocabulary: unknown, bos, eos, the 256 bytes, letters and a few
	// pieces, padded to a multiple of 8 so each tensor is a multiple of 32
	// bytes.
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for i := 0; i < 256; i++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", i))
		types = append(types, 6)
	}
	tokens = append(tokens, "▁")
	types = append(types, 1)
	for c := 'a'; c <= 'z'; c++ {
		tokens = append(tokens, string(c), "▁"+string(c))
		types = append(types, 1, 1)
	}
	for _, p := range []string{"▁the", "▁and", "▁is", "▁to", "▁of", "▁in", "▁it", "▁you", "▁hello", ".", ",", "?", "!", "<|"} {
		tokens = append(tokens, p)
		types = append(types, 1)
	}
	for len(tokens)%8 != 0 {
		tokens = append(tokens, fmt.Sprintf("<pad%d>", len(tokens)))
		types = append(types, 4)
	}
	vocab := len(tokens)
	scores := make([]float32, vocab)
	for i := range scores {
		scores[i] = -float32(i)
	}

	random := func(n int) f32 {
		v := make(f32, n)
		for i := range v {
			v[i] = (rng.Float32() - 0.5) * 0.1
		}
		return v
	}
	ones := func(n int) f32 {
		v := make(f32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	var ts []ggml.Tensor
	add := func(name string, data f32, shape ...uint64) {
		ts = append(ts, ggml.Tensor{Name: name, Kind: 0, Shape: shape, WriterTo: data})
	}
	add("token_embd.weight", random(vocab*embd), uint64(vocab), embd)
	add("output.weight", random(vocab*embd), uint64(vocab), embd)
	add("output_norm.weight", ones(embd), embd)
	for b := 0; b < blocks; b++ {
		p := fmt.Sprintf("blk.%d.", b)
		add(p+"attn_norm.weight", ones(embd), embd)
		for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_output"} {
			add(p+n+".weight", random(embd*embd), embd, embd)
		}
		add(p+"ffn_norm.weight", ones(embd), embd)
		add(p+"ffn_gate.weight", random(ff*embd), ff, embd)
		add(p+"ffn_up.weight", random(ff*embd), ff, embd)
		add(p+"ffn_down.weight", random(embd*ff), embd, ff)
	}
	kv := ggml.KV{
		"general.architecture":                   "llama",
		"general.file_type":                      uint32(0),
		"llama.context_length":                   uint32(2048),
		"llama.embedding_length":                 uint32(embd),
		"llama.block_count":                      uint32(blocks),
		"llama.feed_forward_length":              uint32(ff),
		"llama.attention.head_count":             uint32(heads),
		"llama.attention.head_count_kv":          uint32(heads),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(embd / heads),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(vocab),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.tokens":                  tokens,
		"tokenizer.ggml.scores":                  scores,
		"tokenizer.ggml.token_type":              types,
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.add_bos_token":           true,
	}
	f, err := os.Create(filepath.Join(dir, "tiny.gguf"))
	if err != nil {
		fail(err)
	}
	if err := ggml.WriteGGUF(f, kv, ts); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	modelfile := `FROM ./tiny.gguf
TEMPLATE """{{ range .Messages }}<|{{ .Role }}|>{{ .Content }}
{{ end }}<|assistant|>"""
PARAMETER stop "<|"
`
	if err := os.WriteFile(filepath.Join(dir, "Modelfile"), []byte(modelfile), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ollama-tiny:", err)
	os.Exit(1)
}
