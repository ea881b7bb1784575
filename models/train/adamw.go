package train

import (
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
)

// OptimizerScope is the context scope of AdamW's moment estimates: "adamw/m" and "adamw/v", each holding one
// variable per trained parameter, under the parameter's name.
const OptimizerScope = "adamw"

// adamState creates (if missing) the first and second moment variables for a parameter, zero-initialised.
func adamState(ctx *context.Context, p clip.ParamSpec) (m, v *context.Variable) {
	n := 1
	for _, d := range p.Dims {
		n *= d
	}
	get := func(scope string) *context.Variable {
		c := ctx.In(OptimizerScope).In(scope)
		if existing := c.GetVariableByScopeAndName(c.Scope(), p.Name); existing != nil {
			return existing
		}
		return c.VariableWithValue(p.Name, tensors.FromFlatDataAndDimensions(make([]float32, n), p.Dims...)).
			SetTrainable(false)
	}
	return get("m"), get("v")
}

// adamWUpdate applies one AdamW step (PyTorch's algorithm: decoupled weight decay p ← p·(1 − lr·wd) on decayed
// parameters, then the bias-corrected Adam update) to every trained parameter, writing the new values and
// moments back into their variables. lr is the step's learning rate; bc1 and bc2 are 1−β₁ᵗ and 1−β₂ᵗ.
func adamWUpdate(ctx *context.Context, opts Options, specs []clip.ParamSpec, params []*context.Variable,
	grads []*Node, lr, bc1, bc2 *Node) {
	b1, b2 := opts.Beta1, opts.Beta2
	for i, spec := range specs {
		g := grads[i]
		pv := params[i]
		p := pv.ValueGraph(lr.Graph())
		mv, vv := adamState(ctx, spec)
		m := Add(MulScalar(mv.ValueGraph(lr.Graph()), b1), MulScalar(g, 1-b1))
		v := Add(MulScalar(vv.ValueGraph(lr.Graph()), b2), MulScalar(Square(g), 1-b2))
		mv.SetValueGraph(m)
		vv.SetValueGraph(v)
		if spec.Decayed() && opts.WeightDecay > 0 {
			p = Mul(p, OneMinus(MulScalar(lr, opts.WeightDecay)))
		}
		denom := AddScalar(Div(Sqrt(v), Sqrt(bc2)), opts.Epsilon)
		p = Sub(p, Mul(Div(lr, bc1), Div(m, denom)))
		if spec.Name == "logit_scale" {
			// OpenAI clamps the learnable temperature to [0, ln 100] after each step.
			p = MinScalar(MaxScalar(p, 0), clip.MaxLogitScale)
		}
		pv.SetValueGraph(p)
	}
}

// CosineLR returns the learning rate at a 0-based step: linear warm-up from 0 to base over warmup steps, then a
// cosine decay from base to minLR at total steps.
func CosineLR(step, warmup, total int, base, minLR float64) float64 {
	if warmup > 0 && step < warmup {
		return base * float64(step+1) / float64(warmup)
	}
	if total <= warmup {
		return base
	}
	progress := float64(step-warmup) / float64(total-warmup)
	if progress > 1 {
		progress = 1
	}
	return minLR + 0.5*(base-minLR)*(1+math.Cos(math.Pi*progress))
}
