package nvml_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/vram/nvml"
)

// ParseSMI reads the output of
// nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits
// (MiB, one line per GPU) and returns bytes.
func ExampleParseSMI() {
	used, total, err := nvml.ParseSMI("1536, 8192\n2048, 24576\n", 1)
	fmt.Println(used>>20, "MiB used of", total>>20, "MiB", err)
	_, _, err = nvml.ParseSMI("[N/A], [N/A]\n", 0)
	fmt.Println(err)
	// Output:
	// 2048 MiB used of 24576 MiB <nil>
	// memory.used: "[N/A]" is not a whole number of MiB (nvidia-smi prints [N/A] when the GPU cannot report it)
}
