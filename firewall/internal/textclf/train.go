package textclf

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Example is one training text: its features, label (1 attack, 0 benign)
// and weight.
type Example struct {
	Hashes []uint32
	Label  float64
	Weight float64
}

// TrainConfig sets the optimiser. The zero value is not usable: Bits,
// Epochs and LR must be set (firewall/train sets all of them).
type TrainConfig struct {
	Bits   uint8   // log2 buckets
	Epochs int     // passes over the data
	LR     float64 // initial learning rate
	Lambda float64 // L2 strength per example
	Seed   uint64  // shuffling seed
	// NBSmoothing, when positive, turns on naive-Bayes feature scaling
	// (NBSVM): every feature's value is multiplied by r, the log of the
	// ratio of its share of the attacks' weighted document frequencies to
	// its share of the benign texts' (each count plus NBSmoothing), and the
	// fitted weights are multiplied by r again, so the model still scores
	// plain counts. The L2 penalty then costs little for features whose
	// counts already separate the classes and much for those that do not;
	// on the firewall's data that raised recall at 1% false positives.
	NBSmoothing float64
	// NBPower raises |r| to this power (keeping its sign): 1 is plain
	// NBSVM, smaller values lean towards the unscaled regression; 0 = 1.
	NBPower float64
}

type sparse struct {
	idx []uint32
	val []float64
}

// toSparse turns hashes into a sorted, merged sparse vector scaled by
// 1/sqrt(n), the same scaling the scorer uses.
func toSparse(hashes []uint32, bits uint8) sparse {
	if len(hashes) == 0 {
		return sparse{}
	}
	idx := make([]uint32, len(hashes))
	for i, h := range hashes {
		idx[i] = Bucket(h, bits)
	}
	slices.Sort(idx)
	inv := 1 / math.Sqrt(float64(len(hashes)))
	var s sparse
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && idx[j] == idx[i] {
			j++
		}
		s.idx = append(s.idx, idx[i])
		s.val = append(s.val, float64(j-i)*inv)
		i = j
	}
	return s
}

// Train fits a logistic regression with L2 regularisation by stochastic
// gradient descent with a seeded shuffle, a decaying learning rate and the
// scaled-weight trick for the L2 decay (so each step costs only the example's
// non-zero features). The same examples, order and config give the same
// weights bit for bit on one platform. It returns the bias and the weights.
func Train(examples []Example, cfg TrainConfig) (float64, []float64) {
	xs := make([]sparse, len(examples))
	for i, e := range examples {
		xs[i] = toSparse(e.Hashes, cfg.Bits)
	}
	var r []float64
	if cfg.NBSmoothing > 0 {
		r = nbRatios(examples, xs, cfg)
		for k := range xs {
			for j, ix := range xs[k].idx {
				xs[k].val[j] *= r[ix]
			}
		}
	}
	v := make([]float64, 1<<cfg.Bits)
	scale := 1.0
	bias := 0.0
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a105))
	t := 0.0
	n := float64(len(examples))
	// Weights are averaged over the ends of the second half of the epochs,
	// which steadies SGD's last iterates.
	avg := make([]float64, len(v))
	avgBias, avgN := 0.0, 0.0
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			e := examples[k]
			x := xs[k]
			lr := cfg.LR / (1 + t/n)
			t++
			z := bias
			for j, ix := range x.idx {
				z += scale * v[ix] * x.val[j]
			}
			p := 1 / (1 + math.Exp(-z))
			g := (p - e.Label) * e.Weight
			// L2 decay of all weights, lazily through the scale
			scale *= 1 - lr*cfg.Lambda
			if scale < 1e-6 {
				for i := range v {
					v[i] *= scale
				}
				scale = 1
			}
			step := lr * g / scale
			for j, ix := range x.idx {
				v[ix] -= step * x.val[j]
			}
			bias -= lr * g * 0.1
		}
		if 2*(epoch+1) > cfg.Epochs {
			for i := range v {
				avg[i] += v[i] * scale
			}
			avgBias += bias
			avgN++
		}
	}
	for i := range avg {
		avg[i] /= avgN
		if r != nil {
			avg[i] *= r[i]
		}
	}
	return avgBias / avgN, avg
}

// nbRatios returns each bucket's naive-Bayes log-count ratio (see
// TrainConfig.NBSmoothing) over the examples' weighted document
// frequencies.
func nbRatios(examples []Example, xs []sparse, cfg TrainConfig) []float64 {
	pos := make([]float64, 1<<cfg.Bits)
	neg := make([]float64, 1<<cfg.Bits)
	for i, e := range examples {
		c := neg
		if e.Label == 1 {
			c = pos
		}
		for _, ix := range xs[i].idx {
			c[ix] += e.Weight
		}
	}
	var ps, ns float64
	for i := range pos {
		pos[i] += cfg.NBSmoothing
		neg[i] += cfg.NBSmoothing
		ps += pos[i]
		ns += neg[i]
	}
	power := cfg.NBPower
	if power == 0 {
		power = 1
	}
	r := pos // reused
	for i := range r {
		x := math.Log(pos[i]/ps) - math.Log(neg[i]/ns)
		r[i] = math.Copysign(math.Pow(math.Abs(x), power), x)
	}
	return r
}

// Logit scores hashes (one whole text) with float weights, as Train sees it.
func Logit(bias float64, w []float64, hashes []uint32, bits uint8) float64 {
	x := toSparse(hashes, bits)
	z := bias
	for j, ix := range x.idx {
		z += w[ix] * x.val[j]
	}
	return z
}
