package daemon

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/llm/ollama"
	"github.com/talos-ironclad/talos/vram"
)

// NameGPU is the GPU's boot step and health check (listed whenever
// Options.GPU is set, which `talos run` always does).
const NameGPU = "gpu"

// NoGPUDetail is the gpu step's and check's detail on a machine without a
// usable NVIDIA GPU. It is not a degradation: CPU-only machines are a
// supported setup; the VRAM mutex is simply not built.
const NoGPUDetail = "no GPU found: VRAM arbitration off"

// noOllamaForVRAM explains a readable GPU without a VRAM mutex.
const noOllamaForVRAM = "VRAM arbitration off: TALOS_OLLAMA_URL unset (no local model to arbitrate)"

// VRAM is the daemon's VRAM mutex: built at boot when Options.GPU could be
// read and TALOS_OLLAMA_URL is set, nil otherwise. Components that run a
// local model take a lease from it (Acquire) around each use. It is closed
// by Stop.
func (d *Daemon) VRAM() *vram.Mutex { return d.vram }

// noGPU reports whether a failed reading means there is no GPU to use (no
// NVML, no nvidia-smi, or no device) rather than a GPU that misbehaves.
func noGPU(err error) bool {
	k := vram.KindOf(err)
	return k == vram.ProbeCommandNotFound || k == vram.ProbeGPUNotFound
}

func mb(b uint64) uint64 { return b / vram.MiB }

func describeReading(r vram.Reading) string {
	return fmt.Sprintf("%d MB used of %d MB (%s)", mb(r.Used), mb(r.Total), r.Source)
}

// stepGPU reads the GPU once. No GPU is fine (CPU mode); a GPU that cannot
// be read degrades. With a reading and TALOS_OLLAMA_URL set it builds the
// VRAM mutex that arbitrates Ollama's models (package vram), with
// VRAM_MUTEX_TIMEOUT as its queue timeout and Ollama's runner process as
// the kill target of a hung unload.
func (d *Daemon) stepGPU(ctx context.Context) (string, error) {
	r, err := d.opts.GPU.Memory(ctx)
	if err != nil {
		if noGPU(err) {
			d.gpuAbsent = true
			d.bootLog().Info("no GPU found: VRAM arbitration off", "err", err)
			return NoGPUDetail, nil
		}
		d.gpuBootErr = err
		h := vram.HandlingFor(vram.KindOf(err))
		return "", talos.E(talos.CodeGPUQuery, "boot.gpu",
			fmt.Sprintf("the GPU cannot be read (%s, action %s); VRAM arbitration off", h.Message, h.Action), err)
	}
	detail := "GPU " + describeReading(r)
	if d.cfg.OllamaURL == "" {
		return detail + "; " + noOllamaForVRAM, nil
	}
	rt := d.opts.VRAMRuntime
	if rt == nil {
		c, err := ollama.New(ollama.Config{BaseURL: d.cfg.OllamaURL, Logger: d.log.With("component", "ollama")})
		if err != nil {
			return "", err
		}
		rt = c
	}
	models, err := d.vramModels()
	if err != nil {
		return "", err
	}
	m, err := vram.New(vram.Config{Models: models, AcquireTimeout: d.cfg.VRAMMutexTimeout, Logger: d.log.With("component", "vram")},
		rt, d.opts.GPU, ollama.Runner(), nil)
	if err != nil {
		return "", err
	}
	d.vram = m
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("%s; VRAM mutex on for models %s (acquire timeout %s), state at %s",
		detail, strings.Join(names, ", "), d.cfg.VRAMMutexTimeout, vram.HandlerPath), nil
}

// gpuCheck is the "gpu" health check: without a GPU it is ok with
// NoGPUDetail; otherwise it reads the GPU (warn when it cannot) and
// reports used and total MB and the VRAM mutex's state (warn when the
// mutex is in Error: loads are refused until it is reset).
func (d *Daemon) gpuCheck() health.Check {
	gpu, m, absent, bootErr := d.opts.GPU, d.vram, d.gpuAbsent, d.gpuBootErr
	return health.Check{Name: NameGPU, Func: func(ctx context.Context) (string, error) {
		if absent {
			return NoGPUDetail, nil
		}
		r, err := gpu.Memory(ctx)
		if err != nil {
			h := vram.HandlingFor(vram.KindOf(err))
			detail := ""
			if r.Stale {
				detail = "last known " + describeReading(r)
			}
			return detail, health.Warnf("GPU cannot be read: %s (action %s): %v", h.Message, h.Action, err)
		}
		detail := describeReading(r)
		switch {
		case m != nil:
			s := m.Stats()
			model := s.Model
			if model == "" {
				model = "none"
			}
			detail += fmt.Sprintf("; VRAM mutex %s, model %s, %d leases, %d waiting", s.State, model, s.Leases, s.Waiters)
			if s.State == vram.Error {
				return detail, health.Warnf("the VRAM mutex is in error (%s): local-model loads are refused; restart the daemon to reset it", s.Error)
			}
		case bootErr != nil:
			detail += "; VRAM arbitration off: the GPU could not be read at boot (restart the daemon to turn it on)"
		case d.cfg.OllamaURL == "":
			detail += "; " + noOllamaForVRAM
		}
		return detail, nil
	}}
}

// vramModels returns the models the VRAM mutex may load: Options.VRAMModels
// when set, else TALOS_VRAM_MODELS (each model's free-VRAM need in GB).
func (d *Daemon) vramModels() (map[string]vram.Model, error) {
	if d.opts.VRAMModels != nil {
		return d.opts.VRAMModels, nil
	}
	gbs, err := config.ParseVRAMModels(d.cfg.VRAMModels)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "boot.gpu", "TALOS_VRAM_MODELS = "+strconv.Quote(d.cfg.VRAMModels)+" is invalid", err)
	}
	models := make(map[string]vram.Model, len(gbs))
	for name, gb := range gbs {
		models[name] = vram.Model{MinFree: uint64(gb) * vram.GiB}
	}
	return models, nil
}
