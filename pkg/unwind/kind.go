package unwind

import "strconv"

// Kind says how to find the CFA (canonical frame address: the caller's rsp)
// for a range of code. The values are those of enum unwind_kind in
// bpf/types.h.
type Kind uint8

const (
	KindNone        Kind = 0 // no unwind information for this address (gap between FDEs)
	KindRSP         Kind = 1 // CFA = rsp + CFAOffset
	KindRBP         Kind = 2 // CFA = rbp + CFAOffset
	KindPLT         Kind = 3 // a .plt/.plt.sec stub: CFA = rsp + 8, plus 8 more when (rip & 15) >= the row's threshold (the usual PLT expression)
	KindSignal      Kind = 4 // a signal trampoline (__restore_rt; CIE augmentation 'S'): the caller's rip, rsp, rbp are in the ucontext at rsp
	KindEnd         Kind = 5 // the return address is undefined (DW_CFA_undefined rip): the outermost frame (_start, clone, thread start)
	KindUnsupported Kind = 6 // a rule we cannot follow in the kernel (another register as CFA base, an unknown expression)
)

var kindNames = [...]string{"none", "rsp", "rbp", "plt", "signal", "end", "unsupported"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}
