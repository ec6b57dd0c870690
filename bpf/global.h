/* Global (non-inlined) functions and their argument tags.
 *
 * The verifier checks a global function once per program, on its own, from
 * its argument types alone. An inlined walker is checked again for every
 * path of its caller that reaches it, each path a different state: the
 * stack walkers, inlined, cost ~60k verified instructions a program and
 * most of bprof's start-up. The kernel reads these tags (BTF decl tags)
 * since 6.8; libbpf 1.1's headers lack the macros. */
#pragma once

#define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))
/* A pointer argument every caller passes non-NULL: without the tag, the
 * function would have to test it first. */
#define __arg_nonnull __attribute__((btf_decl_tag("arg:nonnull")))
