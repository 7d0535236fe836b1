package talos

import (
	"strings"
	"unicode/utf8"
)

// CharsPerToken is how many characters Talos counts as one token when it
// estimates a text's size without the model's tokenizer (0.25 tokens per
// character).
const CharsPerToken = 4

// EstimateTokens estimates the tokens of text the one way every Talos
// package does (system prompts in llm, retrieved context in rag): the
// characters of the text without its leading and trailing white space,
// divided by CharsPerToken and rounded down.
func EstimateTokens(text string) int {
	return utf8.RuneCountInString(strings.TrimSpace(text)) / CharsPerToken
}
