//go:build ignore

/* On-CPU sampling: a perf-event program on a software cpu-clock event per CPU.
 * Each tick that lands on a thread of a target process sends one sample with
 * its kernel, user and Python stacks to the ring buffer. */

#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "kernel.h"
#include "types.h"
#include "maps.h"
#include "sample.h"
#include "python.h"

char LICENSE[] SEC("license") = "GPL";

SEC("perf_event")
int bprof_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (!bpf_map_lookup_elem(&targets, &pid))
		return 0;
	stat_inc(STAT_SAMPLES);

	struct sample *s = new_sample(KIND_CPU, pid, tid);
	if (!s)
		return 0;
	__u32 used = collect_stacks(ctx, s);
	walk_python(s, used);
	submit(s);
	return 0;
}
