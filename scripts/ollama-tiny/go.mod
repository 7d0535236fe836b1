module talos-ollama-tiny

go 1.26

require github.com/ollama/ollama v0.6.5
