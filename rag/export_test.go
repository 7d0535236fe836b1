package rag

// The retriever's building blocks, exported for the package's own tests.
var (
	ClampTopK     = clampTopK
	OverFetch     = overFetch
	KeywordScore  = keywordScore
	MetadataScore = metadataScore
	RecencyScore  = recencyScore
	Tokens        = wordSet
	Truncate      = truncateTokens
)
