package main

import (
	"fmt"
	"log"
	"time"
)

// part is one measure of the suite; -only selects parts by name.
type part struct {
	name string
	run  func(cfg config, r *report) error
}

// parts run in this order; those that need the peers' chroot share one.
func parts(root func() (*chroot, error)) []part {
	d := func(cfg config) time.Duration { return cfg.duration }
	return []part{
		{"depth", func(cfg config, r *report) error {
			for _, depth := range []int{4, 8, 16, 64, 128} {
				m, err := perSampleCost(cfg.python, depth, d(cfg))
				if err != nil {
					return fmt.Errorf("depth %d: %w", depth, err)
				}
				r.depth = append(r.depth, m)
				log.Printf("depth %d: %.2f µs per sample", depth, m.nsPerSample/1000)
			}
			return nil
		}},
		{"agent", func(cfg config, r *report) error {
			for _, threads := range []int{1, 4, 16} {
				m, err := agentCost(cfg.python, threads, 3*d(cfg))
				if err != nil {
					return fmt.Errorf("%d threads: %w", threads, err)
				}
				r.agent = append(r.agent, m)
				log.Printf("%d threads: %.3f%% of a core per thread steady, %.3f%% over its whole life, %.1f MB", threads, m.steadyShare*100, m.cpuShare*100, float64(m.maxRSS)/1e6)
			}
			m, err := switchingCost(cfg.python, 3*d(cfg))
			if err != nil {
				return fmt.Errorf("switching workload: %w", err)
			}
			r.agent = append(r.agent, m)
			log.Printf("%s: %.3f%% of a core steady, %.1f MB", m.workload(), m.steadyShare*100, float64(m.maxRSS)/1e6)
			p, err := profileAgent(cfg.python, 16, 3*d(cfg))
			if err != nil {
				return fmt.Errorf("Go CPU profile: %w", err)
			}
			r.agentProf = &p
			return nil
		}},
		{"startup", func(cfg config, r *report) error {
			s, err := startupCost(cfg.python, max(cfg.rounds, 5))
			if err != nil {
				return err
			}
			r.startup = &s
			log.Printf("start-up: record %s, agent %s (medians)", medianDuration(s.record), medianDuration(s.agent))
			return nil
		}},
		{"hostbill", func(cfg config, r *report) error {
			h, err := hostBill(cfg.python, cfg.hostBill)
			if err != nil {
				return err
			}
			r.hostBill = &h
			log.Printf("host bill: %.2f%% of a core after start-up, %.1f MB", 100*h.steadyShare, float64(h.maxRSS)/1e6)
			return nil
		}},
		{"scale", func(cfg config, r *report) error {
			m, err := scale(cfg.python, 1000, 4, d(cfg))
			if err != nil {
				return err
			}
			r.scale = &m
			log.Printf("scale: %d threads (%d busy): %d seen, %d samples, lost %d", m.threads, m.busy, m.threadsSeen, m.samples, m.stats.Lost())
			return nil
		}},
		{"offcpu", func(cfg config, r *report) error {
			m, err := offcpuCost(cfg.python, d(cfg), cfg.rounds)
			if err != nil {
				return err
			}
			r.offcpu = &m
			log.Printf("off-CPU: %.0f switches/s, %.0f ns per switch, %.2f%% of the target's CPU; slowdown %.3f",
				m.switchesPerSec, m.nsPerSwitch, m.cpuShare*100, median(m.on)/median(m.off))
			return nil
		}},
		{"peers", func(cfg config, r *report) error {
			c, err := root()
			if err != nil {
				return err
			}
			m, err := peersCost(c, []int{16, 64}, 3, d(cfg)/2)
			if err != nil {
				return err
			}
			if err := offcpuPeers(&m, c, d(cfg)); err != nil {
				return err
			}
			r.peers = &m
			return nil
		}},
		{"slowdown", func(cfg config, r *report) error {
			c, err := root()
			if err != nil {
				return err
			}
			m, err := slowdown(c, cfg.rounds, cfg.iterations)
			if err != nil {
				return err
			}
			r.slowdown = &m
			return nil
		}},
		{"accuracy", func(cfg config, r *report) error {
			c, err := root()
			if err != nil {
				return err
			}
			m, err := accuracy(c, 3, d(cfg))
			if err != nil {
				return err
			}
			r.accuracy = &m
			return nil
		}},
		{"memory", func(cfg config, r *report) error {
			m, err := memoryOverhead(cfg.python, cfg.rounds, 7*cfg.iterations) // ~3 s of CPU
			if err != nil {
				return err
			}
			r.memory = &m
			log.Printf("memory: slowdown %.3f under bprof, %.3f under tracemalloc", median(m.ratio["bprof record --memory"]),
				median(m.ratio["tracemalloc"]))
			return nil
		}},
		{"symbolize", func(cfg config, r *report) error {
			m, err := symbolizeCost(cfg.python, cfg.libs, 6, d(cfg)/2)
			if err != nil {
				return err
			}
			r.symbolize = &m
			return nil
		}},
		{"unwind", func(cfg config, r *report) error {
			m, err := unwindCost(cfg.python, d(cfg))
			if err != nil {
				return err
			}
			r.unwind = &m
			log.Printf("unwind: %.2f µs per sample by tables (%.0f native frames), %.2f by frame pointers; Add of %d libraries %s",
				m.tables.nsPerSample/1000, m.nativeTables, m.fp.nsPerSample/1000, m.libs, m.addTables)
			return nil
		}},
		{"svg", func(cfg config, r *report) error {
			svg, err := flamegraphBench()
			r.svg = svg
			return err
		}},
	}
}
