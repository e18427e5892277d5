package merge

import (
	"bytes"
	"encoding/binary"
	"math/big"
)

// decForm tells a finite numeric from PostgreSQL's special values.
type decForm uint8

const (
	decFinite decForm = iota
	decNaN
	decPosInf
	decNegInf
)

// Sign words of PostgreSQL's binary numeric format (numeric.c).
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// Constants of numeric.c that fix a division's result scale.
const (
	numericMinSigDigits     = 16   // NUMERIC_MIN_SIG_DIGITS
	numericMaxDisplayScale  = 1000 // NUMERIC_MAX_DISPLAY_SCALE
	numericMinDisplayScale  = 0    // NUMERIC_MIN_DISPLAY_SCALE
	decDigits               = 4    // DEC_DIGITS: decimal digits per NBASE digit
	maxNumericExponentInput = 100000
)

// decimal is an exact PostgreSQL numeric: coef × 10^-scale, printed with
// dscale digits after the point. scale equals dscale except for a binary
// value carrying nonzero digits past its display scale, which PostgreSQL
// never sends but which must not lose precision if it did.
type decimal struct {
	form   decForm
	coef   big.Int
	scale  int32
	dscale int32
	// digits is scratch for parsing and printing, kept to spare
	// allocations on the next value.
	digits []byte
	tmp    big.Int
}

// pow10Table holds 10^0 .. 10^63, the exponents that scale alignment and
// division need almost always; it is read-only after init.
var pow10Table = func() []*big.Int {
	t := make([]*big.Int, 64)
	t[0] = big.NewInt(1)
	ten := big.NewInt(10)
	for i := 1; i < len(t); i++ {
		t[i] = new(big.Int).Mul(t[i-1], ten)
	}
	return t
}()

func pow10(n int32) *big.Int {
	if int(n) < len(pow10Table) {
		return pow10Table[n]
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// set makes d a copy of x.
func (d *decimal) set(x *decimal) {
	d.form, d.scale, d.dscale = x.form, x.scale, x.dscale
	d.coef.Set(&x.coef)
}

// setInt64 makes d the integer n, as int64_to_numeric does (dscale 0).
func (d *decimal) setInt64(n int64) {
	d.form, d.scale, d.dscale = decFinite, 0, 0
	d.coef.SetInt64(n)
}

// setSpecial recognises NaN and the infinities as numeric_in spells them.
func (d *decimal) setSpecial(v []byte) bool {
	switch {
	case bytes.EqualFold(v, []byte("NaN")):
		d.form = decNaN
	case bytes.EqualFold(v, []byte("Infinity")), bytes.EqualFold(v, []byte("+Infinity")),
		bytes.EqualFold(v, []byte("inf")), bytes.EqualFold(v, []byte("+inf")):
		d.form = decPosInf
	case bytes.EqualFold(v, []byte("-Infinity")), bytes.EqualFold(v, []byte("-inf")):
		d.form = decNegInf
	default:
		return false
	}
	d.coef.SetInt64(0)
	d.scale, d.dscale = 0, 0
	return true
}

// parseText reads numeric text: numeric_out's form, and for constants
// also an exponent, as numeric_in accepts it.
func (d *decimal) parseText(v []byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return false
	}
	if (v[0] > '9' || v[0] < '0') && v[0] != '.' && d.setSpecial(v) {
		return true
	}
	i, neg := 0, false
	if v[0] == '-' || v[0] == '+' {
		neg, i = v[0] == '-', 1
	}
	digits := d.digits[:0]
	var frac int32
	point := false
scan:
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			break scan
		}
	}
	d.digits = digits
	if len(digits) == 0 {
		return false
	}
	var exp int64
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		n, ok := parseInt(v[i+1:])
		if !ok || n > maxNumericExponentInput || n < -maxNumericExponentInput {
			return false
		}
		exp, i = n, len(v)
	}
	if i != len(v) {
		return false
	}
	scale := int64(frac) - exp
	if !d.setCoef(digits) {
		return false
	}
	if scale < 0 {
		d.coef.Mul(&d.coef, pow10(int32(-scale)))
		scale = 0
	}
	if neg {
		d.coef.Neg(&d.coef)
	}
	d.form, d.scale, d.dscale = decFinite, int32(scale), int32(scale)
	return true
}

// setCoef sets the coefficient from ASCII digits, without allocating when
// they fit in 64 bits.
func (d *decimal) setCoef(digits []byte) bool {
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) <= 19 {
		var n uint64
		for _, c := range digits {
			n = n*10 + uint64(c-'0')
		}
		d.coef.SetUint64(n)
		return true
	}
	_, ok := d.coef.SetString(string(digits), 10)
	return ok
}

// parseBinary reads numeric_send's format: ndigits, weight, sign, dscale,
// then ndigits base-10000 digits, most significant first.
func (d *decimal) parseBinary(v []byte) bool {
	if len(v) < 8 {
		return false
	}
	nd := int(binary.BigEndian.Uint16(v))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int32(binary.BigEndian.Uint16(v[6:]))
	if len(v) != 8+2*nd || dscale > 0x3FFF {
		return false
	}
	d.coef.SetInt64(0)
	d.scale, d.dscale = 0, 0
	switch sign {
	case numericNaN:
		d.form = decNaN
		return true
	case numericPInf:
		d.form = decPosInf
		return true
	case numericNInf:
		d.form = decNegInf
		return true
	case numericPos, numericNeg:
	default:
		return false
	}
	d.form = decFinite
	exp := int32(decDigits * (weight - nd + 1))
	if shift := exp + dscale; nd <= 4 && shift >= 0 && shift <= 3 {
		// Fast path: N < 10^16, so N × 10^shift fits in 64 bits.
		var n uint64
		for i := 0; i < nd; i++ {
			x := binary.BigEndian.Uint16(v[8+2*i:])
			if x >= 10000 {
				return false
			}
			n = n*10000 + uint64(x)
		}
		for ; shift > 0; shift-- {
			n *= 10
		}
		d.coef.SetUint64(n)
		if sign == numericNeg {
			d.coef.Neg(&d.coef)
		}
		d.scale, d.dscale = dscale, dscale
		return true
	}
	// The digits as one decimal integer N: value = N × 10^exp.
	digits := d.digits[:0]
	for i := 0; i < nd; i++ {
		x := binary.BigEndian.Uint16(v[8+2*i:])
		if x >= 10000 {
			return false
		}
		digits = append(digits, byte('0'+x/1000), byte('0'+x/100%10), byte('0'+x/10%10), byte('0'+x%10))
	}
	scale := dscale
	if shift := exp + dscale; shift >= 0 {
		for ; shift > 0; shift-- {
			digits = append(digits, '0')
		}
	} else {
		k := int(-shift)
		zeros := 0
		for zeros < k && zeros < len(digits) && digits[len(digits)-1-zeros] == '0' {
			zeros++
		}
		if zeros == k || zeros == len(digits) {
			digits = digits[:len(digits)-zeros]
		} else {
			scale = -exp // more digits than dscale shows: keep them all
		}
	}
	d.digits = digits
	if len(digits) == 0 {
		digits = append(digits, '0')
	}
	if !d.setCoef(digits) {
		return false
	}
	if sign == numericNeg {
		d.coef.Neg(&d.coef)
	}
	d.scale, d.dscale = scale, dscale
	return true
}

// rank orders the forms as numeric_cmp does: -Infinity, numbers,
// Infinity, NaN (NaN sorts above everything and equals itself).
func (f decForm) rank() int {
	switch f {
	case decNegInf:
		return 0
	case decFinite:
		return 1
	case decPosInf:
		return 2
	}
	return 3
}

// cmp compares by value, so 1.5 and 1.50 are equal, as in PostgreSQL.
func (d *decimal) cmp(x *decimal) int {
	if ra, rb := d.form.rank(), x.form.rank(); ra != rb || d.form != decFinite {
		return ra - rb
	}
	if d.scale == x.scale {
		return d.coef.Cmp(&x.coef)
	}
	if sa, sb := d.coef.Sign(), x.coef.Sign(); sa != sb {
		return sa - sb
	}
	if d.scale < x.scale {
		d.tmp.Mul(&d.coef, pow10(x.scale-d.scale))
		return d.tmp.Cmp(&x.coef)
	}
	d.tmp.Mul(&x.coef, pow10(d.scale-x.scale))
	return d.coef.Cmp(&d.tmp)
}

// add sets d = d + x; the display scale is the larger one, as add_var
// (and so sum(numeric)) gives.
func (d *decimal) add(x *decimal) {
	if d.form != decFinite || x.form != decFinite {
		d.form = addForms(d.form, x.form)
		return
	}
	switch {
	case d.scale < x.scale:
		d.coef.Mul(&d.coef, pow10(x.scale-d.scale))
		d.scale = x.scale
		d.coef.Add(&d.coef, &x.coef)
	case d.scale > x.scale:
		d.tmp.Mul(&x.coef, pow10(d.scale-x.scale))
		d.coef.Add(&d.coef, &d.tmp)
	default:
		d.coef.Add(&d.coef, &x.coef)
	}
	d.dscale = max(d.dscale, x.dscale)
}

// addForms is numeric addition when either side is special.
func addForms(a, b decForm) decForm {
	switch {
	case a == decNaN || b == decNaN:
		return decNaN
	case a == decFinite:
		return b
	case b == decFinite || a == b:
		return a
	}
	return decNaN // Infinity + -Infinity
}

// weightFirst returns the NBASE weight and first NBASE digit of |d| with
// leading zeros stripped, as select_div_scale reads them; 0, 0 for zero.
func (d *decimal) weightFirst() (weight, first int) {
	if d.coef.Sign() == 0 {
		return 0, 0
	}
	digits := d.tmp.Abs(&d.coef).Append(d.digits[:0], 10)
	d.digits = digits
	exp10 := len(digits) - 1 - int(d.scale) // position of the leading digit
	weight = exp10 / decDigits
	if exp10 < 0 && exp10%decDigits != 0 {
		weight-- // floor division
	}
	lead := exp10 - decDigits*weight + 1 // decimal digits in the first NBASE digit
	for i := 0; i < lead; i++ {
		first *= 10
		if i < len(digits) {
			first += int(digits[i] - '0')
		}
	}
	return weight, first
}

// divInt sets d = num / n (n > 0) exactly as numeric_div computes it: at
// the scale select_div_scale picks, rounded half away from zero. avg is
// numeric_div(sum, count) for integer and numeric inputs.
func (d *decimal) divInt(num *decimal, n int64) {
	if num.form != decFinite {
		d.form = num.form
		d.coef.SetInt64(0)
		d.scale, d.dscale = 0, 0
		return
	}
	var den decimal
	den.setInt64(n)
	w1, f1 := num.weightFirst()
	w2, f2 := den.weightFirst()
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := int32(numericMinSigDigits - qweight*decDigits)
	rscale = max(rscale, num.dscale, den.dscale, numericMinDisplayScale)
	rscale = min(rscale, numericMaxDisplayScale)

	var numer, denom, r big.Int
	numer.Abs(&num.coef)
	denom.SetInt64(n)
	if rscale >= num.scale {
		numer.Mul(&numer, pow10(rscale-num.scale))
	} else {
		denom.Mul(&denom, pow10(num.scale-rscale))
	}
	d.coef.QuoRem(&numer, &denom, &r)
	if r.Lsh(&r, 1).Cmp(&denom) >= 0 {
		d.coef.Add(&d.coef, big.NewInt(1))
	}
	if num.coef.Sign() < 0 {
		d.coef.Neg(&d.coef)
	}
	d.form, d.scale, d.dscale = decFinite, rscale, rscale
}

// display returns the coefficient at the display scale, rounding half
// away from zero if d carries more digits (as round_var does).
func (d *decimal) display() *big.Int {
	switch {
	case d.scale == d.dscale:
		return &d.coef
	case d.scale < d.dscale:
		return d.tmp.Mul(&d.coef, pow10(d.dscale-d.scale))
	}
	p := pow10(d.scale - d.dscale)
	var r big.Int
	d.tmp.QuoRem(&d.coef, p, &r)
	if r.Abs(&r).Lsh(&r, 1).Cmp(p) >= 0 {
		d.tmp.Add(&d.tmp, big.NewInt(int64(d.coef.Sign())))
	}
	return &d.tmp
}

// absDigits returns the decimal digits of |display()| and its sign.
func (d *decimal) absDigits() ([]byte, int) {
	c := d.display()
	digits := c.Append(d.digits[:0], 10)
	d.digits = digits
	if digits[0] == '-' {
		return digits[1:], -1
	}
	return digits, c.Sign()
}

// appendText appends numeric_out's text: dscale digits after the point.
func (d *decimal) appendText(dst []byte) []byte {
	switch d.form {
	case decNaN:
		return append(dst, "NaN"...)
	case decPosInf:
		return append(dst, "Infinity"...)
	case decNegInf:
		return append(dst, "-Infinity"...)
	}
	digits, sign := d.absDigits()
	if sign < 0 {
		dst = append(dst, '-')
	}
	scale := int(d.dscale)
	if len(digits) <= scale {
		dst = append(dst, '0')
	} else {
		dst = append(dst, digits[:len(digits)-scale]...)
	}
	if scale == 0 {
		return dst
	}
	dst = append(dst, '.')
	for i := len(digits); i < scale; i++ {
		dst = append(dst, '0')
	}
	if len(digits) > scale {
		digits = digits[len(digits)-scale:]
	}
	return append(dst, digits...)
}

// appendBinary appends numeric_send's format, with leading and trailing
// zero NBASE digits stripped as make_result leaves them.
func (d *decimal) appendBinary(dst []byte) []byte {
	switch d.form {
	case decNaN:
		return append(dst, 0, 0, 0, 0, numericNaN>>8, 0, 0, 0)
	case decPosInf:
		return append(dst, 0, 0, 0, 0, numericPInf>>8, 0, 0, 0)
	case decNegInf:
		return append(dst, 0, 0, 0, 0, numericNInf>>8, 0, 0, 0)
	}
	digits, sign := d.absDigits()
	ds := uint16(d.dscale)
	if sign == 0 {
		return append(dst, 0, 0, 0, 0, 0, 0, byte(ds>>8), byte(ds))
	}
	// Scale to a multiple of four fractional digits, then cut into NBASE
	// digits from the right.
	frac := (int(d.dscale) + decDigits - 1) / decDigits
	pad := frac*decDigits - int(d.dscale)
	total := len(digits) + pad
	groups := (total + decDigits - 1) / decDigits
	lead := groups*decDigits - total // zeros in front of the first group
	weight := groups - 1 - frac
	nbase := make([]uint16, 0, groups)
	var x uint16
	for i := 0; i < groups*decDigits; i++ {
		var c byte = '0'
		if j := i - lead; j >= 0 && j < len(digits) {
			c = digits[j]
		}
		x = x*10 + uint16(c-'0')
		if i%decDigits == decDigits-1 {
			nbase = append(nbase, x)
			x = 0
		}
	}
	for len(nbase) > 0 && nbase[len(nbase)-1] == 0 {
		nbase = nbase[:len(nbase)-1]
	}
	sw := uint16(numericPos)
	if sign < 0 {
		sw = numericNeg
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(nbase)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sw)
	dst = binary.BigEndian.AppendUint16(dst, ds)
	for _, g := range nbase {
		dst = binary.BigEndian.AppendUint16(dst, g)
	}
	return dst
}
