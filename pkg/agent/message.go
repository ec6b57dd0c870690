package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// maxMessage bounds one registration message (a JSON line).
const maxMessage = 64 << 10

// request is one registration message: {"op":"start",...}, {"op":"memory"}
// or {"op":"stop"}.
type request struct {
	Op     string
	PID    int // 0 when the message names none
	Target Target
	Error  string // "memory": the client's error
}

// wireRequest is the JSON form. Times are in seconds.
type wireRequest struct {
	Op              string            `json:"op"`
	PID             *int              `json:"pid"`
	ApplicationName string            `json:"application_name"`
	Period          *float64          `json:"period"`
	UploadTimeout   *float64          `json:"upload_timeout"`
	Labels          map[string]string `json:"labels"`
	Error           string            `json:"error"` // "memory": why the client could not load the sampler
}

// reply is the agent's answer, one JSON line.
type reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Answering "start" when the agent records memory profiles: where the
	// allocation sampler is for the client to load, or why it is not.
	Memory      *memoryOffer `json:"memory,omitempty"`
	MemoryError string       `json:"memory_error,omitempty"`
}

// memoryOffer tells a client to load the allocation sampler, then say
// {"op":"memory"} (or {"op":"memory","error":"..."} if it could not).
type memoryOffer struct {
	Library string `json:"library"`
}

// parseRequest decodes one registration message. Unknown fields are ignored,
// so that newer clients still talk to older agents; zero periods mean the
// agent's defaults.
func parseRequest(line []byte) (request, error) {
	if len(line) > maxMessage {
		return request{}, fmt.Errorf("message of %d bytes: at most %d", len(line), maxMessage)
	}
	var w wireRequest
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&w); err != nil {
		return request{}, fmt.Errorf("decode message: %w", err)
	}
	if dec.More() {
		return request{}, errors.New("decode message: more than one JSON value on the line")
	}
	r := request{Op: w.Op}
	if w.PID != nil {
		if *w.PID <= 0 {
			return request{}, fmt.Errorf("pid %d: not a process id", *w.PID)
		}
		r.PID = *w.PID
	}
	switch w.Op {
	case "stop":
		return r, nil
	case "memory":
		if len(w.Error) > 1024 {
			w.Error = w.Error[:1024]
		}
		r.Error = w.Error
		return r, nil
	case "start":
	default:
		return request{}, fmt.Errorf("op %q: want \"start\", \"memory\" or \"stop\"", w.Op)
	}
	var err error
	r.Target.ApplicationName = w.ApplicationName
	if r.Target.Period, err = seconds("period", w.Period); err != nil {
		return request{}, err
	}
	if r.Target.UploadTimeout, err = seconds("upload_timeout", w.UploadTimeout); err != nil {
		return request{}, err
	}
	if err := checkLabels(w.Labels); err != nil {
		return request{}, err
	}
	r.Target.Labels = w.Labels
	return r, nil
}

// seconds converts an optional number of seconds; absent or 0 is 0.
func seconds(name string, v *float64) (time.Duration, error) {
	if v == nil || *v == 0 {
		return 0, nil
	}
	s := *v
	if math.IsNaN(s) || s < minPeriod.Seconds() || s > maxPeriod.Seconds() {
		return 0, fmt.Errorf("%s %v: must be between %v and %v seconds", name, s, minPeriod.Seconds(), maxPeriod.Seconds())
	}
	return time.Duration(s * float64(time.Second)), nil
}
