package main

// The Gemini daily quota resets at midnight Pacific time (llm/gemini
// QuotaReset); embedding the time zone database keeps that right on
// machines without tzdata installed, such as minimal containers.
import _ "time/tzdata"
