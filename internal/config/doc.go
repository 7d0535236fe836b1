// Package config resolves the Talos daemon's configuration: the original
// specification's 49 environment variables, with their defaults and ranges,
// plus the Talos-specific service addresses (TALOS_REDIS_URL,
// TALOS_POSTGRES_URL, TALOS_CHROMA_URL, TALOS_DOCKER_HOST, TALOS_OLLAMA_URL,
// TALOS_HEALTH_ADDR, TALOS_GEMINI_ENABLED, TALOS_MEMORY_STORE, …).
//
// # Sources and precedence
//
// Load reads, from lowest to highest precedence:
//
//  1. the defaults (named constants, e.g. DefaultTrustLevel);
//  2. <home>/config/config.yaml, a flat mapping whose keys are the variable
//     names in lower case (trust_level: 2). It is strict: an unknown key, a
//     duplicate, a nested value or a secret is an error with its line number;
//  3. <home>/config/talos.env, KEY=VALUE lines holding the secrets. It must be
//     mode 0600 (or 0400); a file readable by group or others is refused and
//     the message says `chmod 600 <path>`. It is parsed, never executed;
//  4. the process environment;
//  5. flag overrides (LoadOptions.Flags, keyed by variable name).
//
// TALOS_HOME (or LoadOptions.Home, the --home flag) moves the whole tree;
// the default is ~/talos.
//
// # Validation
//
// Every value is checked against its range; all problems are reported at
// once in a *ValidationError (errors.Is(err, talos.ErrEnvInvalid) holds,
// and errors.Is(err, talos.ErrSecretMissing) when a required secret is
// missing). Problems name the variable, the value (secrets are always shown
// as <redacted>) and what is allowed. Secrets are of type Secret, which
// prints as <redacted> everywhere.
//
// Service addresses that are empty mean "not configured": the daemon uses
// its embedded default for that service.
package config
