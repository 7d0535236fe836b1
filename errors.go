package talos

import (
	"errors"
	"fmt"
	"strings"
)

// Category groups error codes by the first digit of their T-code.
type Category string

// Categories of the error registry.
const (
	CategoryInfrastructure Category = "infrastructure" // T0xx
	CategoryResources      Category = "resources"      // T1xx
	CategoryModel          Category = "model"          // T2xx
	CategorySkills         Category = "skills"         // T3xx
	CategorySecurity       Category = "security"       // T4xx
)

// Severity says how urgently a code needs a person. Severities are ordered
// numerically so alert routing can compare them (Info < Warning < Critical).
type Severity int

// Severities, in increasing order.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityError
	SeverityCritical
)

// String returns the lower-case name of the severity.
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	case SeverityCritical:
		return "critical"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Code is a stable error code such as "T100". Codes compare as strings and
// never change meaning once published.
type Code string

// CodeInfo documents one code of the registry.
type CodeInfo struct {
	Code     Code
	Name     string // SCREAMING_SNAKE name, stable
	Category Category
	Severity Severity
	Meaning  string // one line: what happened
	Hex      int    // the original specification's hex code, or -1 when it gives none
}

// The registry. The T-codes of the original specification keep their numbers; failures that the
// spec only gives as hex codes get new T-codes, with the hex value
// kept as an alias.
const (
	CodeRedis            Code = "T001"
	CodeChroma           Code = "T002"
	CodePostgres         Code = "T003"
	CodeEnvInvalid       Code = "T004"
	CodeDirPermissions   Code = "T005"
	CodeSecretMissing    Code = "T006"
	CodeEventLoopBlocked Code = "T007"
	CodeSockProxy        Code = "T008"
	CodeDocker           Code = "T009"
	CodeConfigInvalid    Code = "T010"
	CodeMaintenanceBusy  Code = "T011"
	CodeMaintenanceState Code = "T012"
	CodeMCPServer        Code = "T013"
	CodeInUse            Code = "T014"
	CodeInputInvalid     Code = "T015"
	CodeTokenLimit       Code = "T026"

	CodeVRAMTimeout       Code = "T100"
	CodeOOMSystem         Code = "T101"
	CodeOOMGPU            Code = "T102"
	CodeDiskCritical      Code = "T103"
	CodeSandboxQuota      Code = "T104"
	CodeUnloadHang        Code = "T105"
	CodeProcessKillFailed Code = "T106"
	CodeGPUUnrecoverable  Code = "T107"
	CodeVectorStoreFull   Code = "T108"
	CodePruneFailed       Code = "T109"
	CodeGPUQuery          Code = "T110"

	CodeGeminiConnection Code = "T200"
	CodeGeminiRateLimit  Code = "T201"
	CodeGeminiQuota      Code = "T202"
	CodeLocalModelLoad   Code = "T203"
	CodeLocalModelTime   Code = "T204"
	CodeCircuitOpen      Code = "T205"
	CodeSafetyBlock      Code = "T206"
	CodeModelBadResponse Code = "T207"

	CodeSkillTimeout      Code = "T300"
	CodeSkillSyntax       Code = "T301"
	CodeSkillSandbox      Code = "T302"
	CodeSkillMemory       Code = "T303"
	CodeSkillException    Code = "T304"
	CodeSkillScanRejected Code = "T305"

	CodeUnauthorized    Code = "T400"
	CodePromptInjection Code = "T401"
	CodeBadSignature    Code = "T402"
	CodeRateLimited     Code = "T403"
	CodePanic           Code = "T404"
	CodeLockdown        Code = "T405"
	CodePolicyDenied    Code = "T406"
)

var registry = []CodeInfo{
	{CodeRedis, "REDIS_CONNECTION_FAILED", CategoryInfrastructure, SeverityError, "Redis connection failed", -1},
	{CodeChroma, "CHROMADB_CONNECTION_FAILED", CategoryInfrastructure, SeverityError, "ChromaDB connection failed", -1},
	{CodePostgres, "POSTGRES_CONNECTION_FAILED", CategoryInfrastructure, SeverityCritical, "PostgreSQL connection failed", -1},
	{CodeEnvInvalid, "ENV_VALIDATION_FAILED", CategoryInfrastructure, SeverityCritical, "environment validation failed", -1},
	{CodeDirPermissions, "DIR_PERMISSION_FAILED", CategoryInfrastructure, SeverityCritical, "directory permission verification failed", -1},
	{CodeSecretMissing, "SECRET_MISSING", CategoryInfrastructure, SeverityCritical, "a required secret is missing", -1},
	{CodeEventLoopBlocked, "EVENT_LOOP_BLOCKED", CategoryInfrastructure, SeverityWarning, "the event loop (a goroutine the daemon watches) was blocked", -1},
	{CodeSockProxy, "SOCKET_PROXY_UNAVAILABLE", CategoryInfrastructure, SeverityError, "Docker socket proxy unavailable", -1},
	{CodeDocker, "DOCKER_UNAVAILABLE", CategoryInfrastructure, SeverityError, "Docker engine unreachable", -1},
	{CodeConfigInvalid, "CONFIG_INVALID", CategoryInfrastructure, SeverityCritical, "configuration file is invalid", -1},
	{CodeMaintenanceBusy, "MAINTENANCE_BUSY", CategoryInfrastructure, SeverityWarning, "a maintenance (dream) cycle is already running or ran too recently", -1},
	{CodeMaintenanceState, "MAINTENANCE_STATE_FAILED", CategoryInfrastructure, SeverityError, "the maintenance (dream) state files could not be read or written", -1},
	{CodeMCPServer, "MCP_SERVER_FAILED", CategoryInfrastructure, SeverityError, "an MCP tool server failed to start, crashed, gave up after its retries or did not answer in time", -1},
	{CodeInUse, "IN_USE", CategoryInfrastructure, SeverityError, "another process holds the lock on a resource only one may use (a second daemon on the same home?)", -1},
	{CodeTokenLimit, "TOKEN_DAILY_LIMIT", CategoryInfrastructure, SeverityWarning, "the day's token count reached TOKEN_DAILY_LIMIT: escalation to the cloud model is refused until 00:00 UTC; the local model still answers", -1},
	{CodeInputInvalid, "INPUT_INVALID", CategoryInfrastructure, SeverityWarning, "a request's input was refused (empty, too large or malformed); nothing was changed", -1},

	{CodeVRAMTimeout, "VRAM_TIMEOUT", CategoryResources, SeverityWarning, "VRAM mutex wait exceeded its timeout", 0x10},
	{CodeOOMSystem, "OOM_SYSTEM", CategoryResources, SeverityCritical, "system memory exhausted", -1},
	{CodeOOMGPU, "OOM_GPU", CategoryResources, SeverityError, "GPU VRAM exhausted or not enough free for a load", -1},
	{CodeDiskCritical, "DISK_CRITICAL", CategoryResources, SeverityCritical, "disk space critical (under 10% free)", -1},
	{CodeSandboxQuota, "SANDBOX_QUOTA_EXCEEDED", CategoryResources, SeverityWarning, "sandbox quota exceeded", -1},
	{CodeUnloadHang, "UNLOAD_HANG", CategoryResources, SeverityError, "model unload hung for more than 29 s", 0x11},
	{CodeProcessKillFailed, "PROCESS_KILL_FAILED", CategoryResources, SeverityCritical, "a hung process could not be killed", 0x12},
	{CodeGPUUnrecoverable, "GPU_UNRECOVERABLE", CategoryResources, SeverityCritical, "GPU unrecoverable until an operator resets it", 0x13},
	{CodeVectorStoreFull, "CHROMADB_FULL", CategoryResources, SeverityError, "vector store at capacity", 0x20},
	{CodePruneFailed, "PRUNE_FAILED", CategoryResources, SeverityError, "vector pruning failed", 0x21},
	{CodeGPUQuery, "GPU_QUERY_FAILED", CategoryResources, SeverityWarning, "GPU memory could not be read", -1},

	{CodeGeminiConnection, "GEMINI_CONNECTION_ERROR", CategoryModel, SeverityError, "Gemini API connection error", -1},
	{CodeGeminiRateLimit, "RATE_LIMIT", CategoryModel, SeverityWarning, "Gemini API rate limit exceeded", 0x32},
	{CodeGeminiQuota, "GEMINI_QUOTA_EXCEEDED", CategoryModel, SeverityError, "Gemini API quota exceeded", -1},
	{CodeLocalModelLoad, "LOCAL_MODEL_LOAD_FAILED", CategoryModel, SeverityError, "local model failed to load", -1},
	{CodeLocalModelTime, "LOCAL_MODEL_TIMEOUT", CategoryModel, SeverityError, "local model generation timed out", -1},
	{CodeCircuitOpen, "CIRCUIT_OPEN", CategoryModel, SeverityWarning, "circuit breaker is open", 0x30},
	{CodeSafetyBlock, "SAFETY_BLOCK", CategoryModel, SeverityInfo, "the model refused for content or safety reasons", 0x31},
	{CodeModelBadResponse, "MODEL_BAD_RESPONSE", CategoryModel, SeverityError, "a model returned a response that could not be used", -1},

	{CodeSkillTimeout, "SKILL_TIMEOUT", CategorySkills, SeverityWarning, "skill execution timed out", -1},
	{CodeSkillSyntax, "SKILL_SYNTAX_ERROR", CategorySkills, SeverityWarning, "skill has a syntax error", -1},
	{CodeSkillSandbox, "SKILL_SANDBOX_VIOLATION", CategorySkills, SeverityCritical, "skill violated its sandbox", -1},
	{CodeSkillMemory, "SKILL_MEMORY_LIMIT", CategorySkills, SeverityWarning, "skill exceeded its memory limit", -1},
	{CodeSkillException, "SKILL_UNHANDLED_EXCEPTION", CategorySkills, SeverityWarning, "skill raised an unhandled exception", -1},
	{CodeSkillScanRejected, "SKILL_SCAN_REJECTED", CategorySkills, SeverityError, "security scanner rejected the skill", -1},

	{CodeUnauthorized, "UNAUTHORIZED", CategorySecurity, SeverityCritical, "unauthorized API access attempt", -1},
	{CodePromptInjection, "PROMPT_INJECTION", CategorySecurity, SeverityCritical, "prompt injection detected", -1},
	{CodeBadSignature, "INVALID_SIGNATURE", CategorySecurity, SeverityCritical, "invalid skill or audit signature", -1},
	{CodeRateLimited, "RATE_LIMITED", CategorySecurity, SeverityWarning, "rate limit exceeded (API or web)", -1},
	{CodePanic, "PANIC_ENGAGED", CategorySecurity, SeverityCritical, "panic button engaged", -1},
	{CodeLockdown, "LOCKDOWN", CategorySecurity, SeverityCritical, "the system is in lockdown", -1},
	{CodePolicyDenied, "POLICY_DENIED", CategorySecurity, SeverityWarning, "a request was denied by policy", -1},
}

// Codes returns a copy of the whole registry, in code order.
func Codes() []CodeInfo {
	out := make([]CodeInfo, len(registry))
	copy(out, registry)
	return out
}

// Lookup returns the registry entry of c.
func Lookup(c Code) (CodeInfo, bool) {
	for _, info := range registry {
		if info.Code == c {
			return info, true
		}
	}
	return CodeInfo{}, false
}

// LookupHex returns the registry entry whose hex alias (the original
// specification's hex code) is h.
func LookupHex(h int) (CodeInfo, bool) {
	for _, info := range registry {
		if info.Hex == h && h >= 0 {
			return info, true
		}
	}
	return CodeInfo{}, false
}

// Info returns the registry entry of c, or an entry named UNKNOWN.
func (c Code) Info() CodeInfo {
	if info, ok := Lookup(c); ok {
		return info
	}
	return CodeInfo{Code: c, Name: "UNKNOWN", Severity: SeverityError, Meaning: "unregistered code", Hex: -1}
}

// Error makes a Code usable as a sentinel: errors.Is(err, talos.CodeVRAMTimeout)
// is true for any *Error carrying that code.
func (c Code) Error() string { return string(c) + " " + c.Info().Name }

// Sentinels, one per code, for errors.Is. They are Codes, so
// errors.Is(err, talos.ErrVRAMTimeout) matches every *Error with code T100.
var (
	ErrRedis            error = CodeRedis
	ErrChroma           error = CodeChroma
	ErrPostgres         error = CodePostgres
	ErrEnvInvalid       error = CodeEnvInvalid
	ErrDirPermissions   error = CodeDirPermissions
	ErrSecretMissing    error = CodeSecretMissing
	ErrEventLoopBlocked error = CodeEventLoopBlocked
	ErrSockProxy        error = CodeSockProxy
	ErrDocker           error = CodeDocker
	ErrConfigInvalid    error = CodeConfigInvalid
	ErrMaintenanceBusy  error = CodeMaintenanceBusy
	ErrMaintenanceState error = CodeMaintenanceState
	ErrMCPServer        error = CodeMCPServer
	ErrInUse            error = CodeInUse
	ErrInputInvalid     error = CodeInputInvalid
	ErrTokenLimit       error = CodeTokenLimit

	ErrVRAMTimeout       error = CodeVRAMTimeout
	ErrOOMSystem         error = CodeOOMSystem
	ErrOOMGPU            error = CodeOOMGPU
	ErrDiskCritical      error = CodeDiskCritical
	ErrSandboxQuota      error = CodeSandboxQuota
	ErrUnloadHang        error = CodeUnloadHang
	ErrProcessKillFailed error = CodeProcessKillFailed
	ErrGPUUnrecoverable  error = CodeGPUUnrecoverable
	ErrVectorStoreFull   error = CodeVectorStoreFull
	ErrPruneFailed       error = CodePruneFailed
	ErrGPUQuery          error = CodeGPUQuery

	ErrGeminiConnection error = CodeGeminiConnection
	ErrGeminiRateLimit  error = CodeGeminiRateLimit
	ErrGeminiQuota      error = CodeGeminiQuota
	ErrLocalModelLoad   error = CodeLocalModelLoad
	ErrLocalModelTime   error = CodeLocalModelTime
	ErrCircuitOpen      error = CodeCircuitOpen
	ErrSafetyBlock      error = CodeSafetyBlock
	ErrModelBadResponse error = CodeModelBadResponse

	ErrSkillTimeout      error = CodeSkillTimeout
	ErrSkillSyntax       error = CodeSkillSyntax
	ErrSkillSandbox      error = CodeSkillSandbox
	ErrSkillMemory       error = CodeSkillMemory
	ErrSkillException    error = CodeSkillException
	ErrSkillScanRejected error = CodeSkillScanRejected

	ErrUnauthorized    error = CodeUnauthorized
	ErrPromptInjection error = CodePromptInjection
	ErrBadSignature    error = CodeBadSignature
	ErrRateLimited     error = CodeRateLimited
	ErrPanic           error = CodePanic
	ErrLockdown        error = CodeLockdown
	ErrPolicyDenied    error = CodePolicyDenied
)

// Error is an error carrying a registry code, the operation that failed, a
// human message (what happened, to what, what to do) and an optional cause.
type Error struct {
	Code    Code
	Op      string // for example "vram.Acquire"
	Message string
	Err     error // the cause, may be nil
}

// E builds an *Error. cause may be nil.
func E(code Code, op, message string, cause error) *Error {
	return &Error{Code: code, Op: op, Message: message, Err: cause}
}

// Errorf builds an *Error with a formatted message and no cause. A %w verb in
// format wraps its argument as the cause.
func Errorf(code Code, op, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Code: code, Op: op, Message: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

// Error formats as "T100 VRAM_TIMEOUT: vram.Acquire: message: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	b.WriteByte(' ')
	b.WriteString(e.Code.Info().Name)
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && (e.Message == "" || !strings.Contains(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the same code (a Code sentinel or another
// *Error with the same code).
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// CodeOf returns the code of the first *Error in err's chain, or "" if none.
func CodeOf(err error) Code {
	var te *Error
	if errors.As(err, &te) {
		return te.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return ""
}
