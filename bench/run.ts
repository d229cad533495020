// Benchmarks arrive with the benchmark issue; until then this says so plainly.
console.log("no benchmarks yet");
