package export

import (
	"bufio"
	"encoding/binary"
	"io"
	"slices"

	"github.com/google/pprof/profile"
)

// encode writes p in the profile.proto wire format to w, uncompressed, as it
// goes. profile.Write first builds an index of every sample's locations and
// labels, then the whole message in one buffer, then compresses it: for a
// recording of 16 threads (3,000 samples, ~60 frames each) ~4 MB beside the
// profile itself, at the moment of `record`'s peak RSS. Here each sample,
// location, function and mapping is built in a small buffer, used again,
// and each string gets its table entry when first used: protobuf lets the
// entries of a repeated field come between other fields, and a reader
// resolves the indexes once it has read the whole message.
func encode(w io.Writer, p *profile.Profile) error {
	e := &protoEncoder{w: bufio.NewWriterSize(w, 32<<10), strings: map[string]int64{}}
	e.str("") // the table's first entry is always ""
	for _, st := range p.SampleType {
		e.valueType(fieldSampleType, st)
	}
	for _, s := range p.Sample {
		e.sample(s)
	}
	for _, m := range p.Mapping {
		e.mapping(m)
	}
	for _, l := range p.Location {
		e.location(l)
	}
	for _, f := range p.Function {
		e.function(f)
	}
	e.top(fieldDropFrames, e.str(p.DropFrames))
	e.top(fieldKeepFrames, e.str(p.KeepFrames))
	e.top(fieldTimeNanos, p.TimeNanos)
	e.top(fieldDurationNanos, p.DurationNanos)
	if p.PeriodType != nil {
		e.valueType(fieldPeriodType, p.PeriodType)
	}
	e.top(fieldPeriod, p.Period)
	for _, c := range p.Comments {
		// Repeated: an empty comment keeps its place (index 0).
		i := e.str(c)
		e.msg = binary.AppendUvarint(e.msg[:0], fieldComment<<3|wireVarint)
		e.msg = binary.AppendUvarint(e.msg, uint64(i))
		e.write(e.msg)
	}
	e.top(fieldDefaultSampleType, e.str(p.DefaultSampleType))
	e.top(fieldDocURL, e.str(p.DocURL))
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}

// Field numbers of profile.proto.
const (
	fieldSampleType        = 1
	fieldSample            = 2
	fieldMapping           = 3
	fieldLocation          = 4
	fieldFunction          = 5
	fieldStringTable       = 6
	fieldDropFrames        = 7
	fieldKeepFrames        = 8
	fieldTimeNanos         = 9
	fieldDurationNanos     = 10
	fieldPeriodType        = 11
	fieldPeriod            = 12
	fieldComment           = 13
	fieldDefaultSampleType = 14
	fieldDocURL            = 15
)

// Wire types.
const (
	wireVarint = 0
	wireBytes  = 2
)

type protoEncoder struct {
	w       *bufio.Writer
	err     error
	strings map[string]int64
	msg     []byte   // the top-level message being built
	sub     []byte   // a message inside it (a label, a line)
	keys    []string // a sample's label keys, sorted
	hdr     [2 * binary.MaxVarintLen64]byte
}

// write writes a whole top-level field.
func (e *protoEncoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

// str returns s's index in the string table, writing its entry the first
// time.
func (e *protoEncoder) str(s string) int64 {
	if i, ok := e.strings[s]; ok {
		return i
	}
	i := int64(len(e.strings))
	e.strings[s] = i
	b := binary.AppendUvarint(e.hdr[:0], fieldStringTable<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(len(s)))
	e.write(b)
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
	return i
}

// top writes a top-level integer field, left out when zero.
func (e *protoEncoder) top(field int, v int64) {
	if v != 0 {
		e.msg = appendVarintField(e.msg[:0], field, uint64(v))
		e.write(e.msg)
	}
}

// nested writes body as field of the top-level message.
func (e *protoEncoder) nested(field int, body []byte) {
	b := binary.AppendUvarint(e.hdr[:0], uint64(field)<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(len(body)))
	e.write(b)
	e.write(body)
}

func (e *protoEncoder) valueType(field int, vt *profile.ValueType) {
	typ, unit := e.str(vt.Type), e.str(vt.Unit)
	b := appendVarintField(e.msg[:0], 1, uint64(typ))
	b = appendVarintField(b, 2, uint64(unit))
	e.msg = b
	e.nested(field, b)
}

func (e *protoEncoder) sample(s *profile.Sample) {
	// Strings first: their entries go out before the sample is.
	e.keys = e.keys[:0]
	for k := range s.Label {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	b := e.msg[:0]
	if len(s.Location) > 0 {
		e.sub = e.sub[:0]
		for _, l := range s.Location {
			e.sub = binary.AppendUvarint(e.sub, l.ID)
		}
		b = appendBytesField(b, 1, e.sub)
	}
	if len(s.Value) > 0 {
		e.sub = e.sub[:0]
		for _, v := range s.Value {
			e.sub = binary.AppendUvarint(e.sub, uint64(v))
		}
		b = appendBytesField(b, 2, e.sub)
	}
	for _, k := range e.keys {
		key := e.str(k)
		for _, v := range s.Label[k] {
			e.sub = appendVarintField(e.sub[:0], 1, uint64(key))
			e.sub = appendVarintField(e.sub, 2, uint64(e.str(v)))
			b = appendBytesField(b, 3, e.sub)
		}
	}
	e.keys = e.keys[:0]
	for k := range s.NumLabel {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	for _, k := range e.keys {
		key := e.str(k)
		units := s.NumUnit[k]
		for i, v := range s.NumLabel[k] {
			e.sub = appendVarintField(e.sub[:0], 1, uint64(key))
			e.sub = appendVarintField(e.sub, 3, uint64(v))
			if i < len(units) {
				e.sub = appendVarintField(e.sub, 4, uint64(e.str(units[i])))
			}
			b = appendBytesField(b, 3, e.sub)
		}
	}
	e.msg = b
	e.nested(fieldSample, b)
}

func (e *protoEncoder) mapping(m *profile.Mapping) {
	file, buildID := e.str(m.File), e.str(m.BuildID)
	b := appendVarintField(e.msg[:0], 1, m.ID)
	b = appendVarintField(b, 2, m.Start)
	b = appendVarintField(b, 3, m.Limit)
	b = appendVarintField(b, 4, m.Offset)
	b = appendVarintField(b, 5, uint64(file))
	b = appendVarintField(b, 6, uint64(buildID))
	b = appendBoolField(b, 7, m.HasFunctions)
	b = appendBoolField(b, 8, m.HasFilenames)
	b = appendBoolField(b, 9, m.HasLineNumbers)
	b = appendBoolField(b, 10, m.HasInlineFrames)
	e.msg = b
	e.nested(fieldMapping, b)
}

func (e *protoEncoder) location(l *profile.Location) {
	b := appendVarintField(e.msg[:0], 1, l.ID)
	if l.Mapping != nil {
		b = appendVarintField(b, 2, l.Mapping.ID)
	}
	b = appendVarintField(b, 3, l.Address)
	for _, ln := range l.Line {
		e.sub = e.sub[:0]
		if ln.Function != nil {
			e.sub = appendVarintField(e.sub, 1, ln.Function.ID)
		}
		e.sub = appendVarintField(e.sub, 2, uint64(ln.Line))
		e.sub = appendVarintField(e.sub, 3, uint64(ln.Column))
		b = appendBytesField(b, 4, e.sub)
	}
	b = appendBoolField(b, 5, l.IsFolded)
	e.msg = b
	e.nested(fieldLocation, b)
}

func (e *protoEncoder) function(f *profile.Function) {
	name, system, file := e.str(f.Name), e.str(f.SystemName), e.str(f.Filename)
	b := appendVarintField(e.msg[:0], 1, f.ID)
	b = appendVarintField(b, 2, uint64(name))
	b = appendVarintField(b, 3, uint64(system))
	b = appendVarintField(b, 4, uint64(file))
	b = appendVarintField(b, 5, uint64(f.StartLine))
	e.msg = b
	e.nested(fieldFunction, b)
}

// appendVarintField appends an integer field, left out when zero (the
// default a reader assumes). Negative values take ten bytes, as in proto.
func appendVarintField(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(field)<<3|wireVarint)
	return binary.AppendUvarint(b, v)
}

func appendBoolField(b []byte, field int, v bool) []byte {
	if !v {
		return b
	}
	return appendVarintField(b, field, 1)
}

func appendBytesField(b []byte, field int, body []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}
