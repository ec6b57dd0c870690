//go:build ignore

/* Kernel symbol names on demand: a syscall program that user space runs
 * (BPF_PROG_TEST_RUN) over a batch of kernel addresses, printing each with
 * bpf_snprintf's %ps, which is the kernel's own symbol lookup: "name", or
 * "name [module]", or the address in hex when no symbol holds it. A profile
 * names a few hundred distinct kernel addresses; reading /proc/kallsyms to
 * name them cost ~70 ms of CPU and a 3.5 MB table (pkg/ksym). */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define KSYM_BATCH 64	/* addresses a run names */
#define KSYM_NAME 256	/* bytes of a name, NUL included; longer ones are cut */

struct ksym_batch {
	__u64 addr[KSYM_BATCH];
	__s64 len[KSYM_BATCH];	/* what bpf_snprintf returned: the length with NUL, or an error */
	char name[KSYM_BATCH][KSYM_NAME];
	__u32 n;		/* addresses in addr */
	__u32 _pad;
};

/* One batch, written and read back by user space around each run (a
 * syscall program's runs are serialized by its one caller). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ksym_batch);
} batches SEC(".maps");

char LICENSE[] SEC("license") = "GPL";

SEC("syscall")
int bprof_ksym(void *ctx)
{
	__u32 zero = 0;
	struct ksym_batch *b = bpf_map_lookup_elem(&batches, &zero);
	if (!b)
		return 0;
	/* A bounded loop: the verifier checks its 64 steps, each one helper call. */
	for (__u32 i = 0; i < KSYM_BATCH && i < b->n; i++) {
		__u64 arg = b->addr[i];
		b->len[i] = bpf_snprintf(b->name[i], KSYM_NAME, "%ps", &arg, sizeof(arg));
	}
	return 0;
}
