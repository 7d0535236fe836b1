package nvml

import (
	"time"

	"github.com/talos-ironclad/talos/vram"
)

// DefaultInitRetry is how long a failed NVML initialisation is remembered
// before it is tried again.
const DefaultInitRetry = 30 * time.Second

// Config selects the GPU and the readers' settings. The zero value reads GPU
// 0 with the defaults.
type Config struct {
	Index      int           // GPU index as NVML and nvidia-smi number them
	SMIPath    string        // nvidia-smi command; "" = DefaultSMIPath (looked up in PATH)
	SMITimeout time.Duration // 0 = DefaultSMITimeout (5 s)
	InitRetry  time.Duration // 0 = DefaultInitRetry
}

func (c Config) withDefaults() Config {
	if c.SMIPath == "" {
		c.SMIPath = DefaultSMIPath
	}
	if c.SMITimeout <= 0 {
		c.SMITimeout = DefaultSMITimeout
	}
	if c.InitRetry <= 0 {
		c.InitRetry = DefaultInitRetry
	}
	if c.Index < 0 {
		c.Index = 0
	}
	return c
}

// Detect returns the GPU reader Talos uses: NVML first, nvidia-smi second,
// with the last good reading remembered (vram.Fallback).
func Detect(cfg Config) vram.GPU {
	return vram.Fallback(New(cfg), NewSMI(cfg))
}
