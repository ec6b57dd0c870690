// Package top turns the profile of each interval of a live recording into
// the rows of a `top`-like table: functions with the share of the interval
// they ran themselves (own) and with their callees (total), and what they
// added up to since the start.
//
// In a stack with Python frames only those count: a sample's own time goes
// to its innermost Python frame, so the time a Python function spends in C
// code it calls (a hash, a regex, a sleep) is its own, as py-spy top counts
// it. A stack with no Python frame (a native thread, a process that is not
// Python) counts all its frames, and its leaf gets the own time. Every
// distinct function of a stack gets the sample's total time once, however
// often it recurs.
package top
