package scheduler

import "math"

// Constants of the latency estimate.
const (
	earthRadiusKm = 6371.0088 // mean radius
	fibreKmPerMs  = 204.0     // light in fibre, about c/1.47
	pathStretch   = 2.1       // internet paths against the great circle, both ways
	// LastMileMicros is added to every estimate for access networks.
	LastMileMicros = 5000
	// microsPerKm folds the constants: km / 204 km/ms × 2.1 × 1000 µs/ms.
	microsPerKm = pathStretch * 1000 / fibreKmPerMs
)

// EstimateLatencyMicros estimates the round trip between two places: the
// great-circle distance at 204 km per ms, stretched 2.1× for real internet
// paths, plus 5 ms last mile, rounded to whole microseconds. It returns 0
// when either location is unknown.
//
// It uses float64 internally, so the result may differ by a microsecond
// between platforms; it is an input to placement, never to consensus.
func EstimateLatencyMicros(a, b Location) uint32 {
	if !a.Known() || !b.Known() {
		return 0
	}
	return uint32(math.Round(greatCircleKm(a, b)*microsPerKm)) + LastMileMicros
}

// greatCircleKm is the haversine distance. The explicit float64 conversions
// forbid fused multiply-adds, which some architectures would otherwise use.
func greatCircleKm(a, b Location) float64 {
	lat1, lat2 := radians(int64(a.LatE6)), radians(int64(b.LatE6))
	sinLat := math.Sin((lat2 - lat1) / 2)
	sinLon := math.Sin(radians(int64(b.LonE6)-int64(a.LonE6)) / 2)
	h := float64(sinLat*sinLat) + float64(math.Cos(lat1)*math.Cos(lat2)*float64(sinLon*sinLon))
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}

func radians(microdegrees int64) float64 {
	return float64(microdegrees) * (math.Pi / 180e6)
}
