# report_scaling.gp - weak and strong scaling efficiency against GPUs (CPU runs: ranks):
# moebench's `scale` results, the ideal line at 100%, and the published efficiencies
# (Frontier's, results/baselines/frontier.json) marked and named.
#
#   gnuplot -c plots/report_scaling.gp DIR/report_scaling.csv DIR/report_scaling   # -> .png
#
# `moebench report --plot DIR` writes the CSV (benchmarks/report/report_plot.c):
# label, kind (measured|published), mode (weak|strong), gpus, eff_pct, after '#'
# provenance lines. Weak: per-GPU throughput at N over that at the sweep's fewest GPUs
# N0; strong: T(N0)*N0 / (T(N)*N) with the global batch fixed.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/report_scaling.gp REPORT_SCALING.csv OUTBASE"
	exit status 2
}
datafile = ARG1
outbase = ARG2

set datafile separator ","
set datafile columnheaders

sel(k, m) = strcol(2) eq k && strcol(3) eq m

if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) {
	set terminal pngcairo size 1200,800 enhanced font 'Sans,10'
} else {
	set terminal png size 1200,800 enhanced
}
set output outbase.'.png'
set title 'Scaling efficiency: moebench scale sweeps beside the published figures' font ',13'
set xlabel 'GPUs (CPU runs: MPI ranks), log scale'
set ylabel 'scaling efficiency (% of ideal)'
set logscale x 2
set xrange [0.7:8192]
set yrange [0:130]
set format y '%g%%'
set grid lc rgb '#e0e0e0'
set key bottom left box opaque
# NOTE: a measured sweep is drawn as a line through its sizes (the CSV keeps a sweep's
# rows in order); published figures are single points, each named.
plot 100 with lines dt 2 lw 1.5 lc rgb '#555555' title 'ideal (100%)', \
     datafile using 4:(sel('measured', 'weak') ? column(5) : NaN) with linespoints pt 7 ps 1.4 lw 2 lc rgb '#c0392b' title 'moebench weak', \
     '' using 4:(sel('measured', 'strong') ? column(5) : NaN) with linespoints pt 5 ps 1.4 lw 2 lc rgb '#e67e22' title 'moebench strong', \
     '' using 4:(sel('published', 'weak') ? column(5) : NaN) with points pt 9 ps 1.8 lc rgb '#1f5fa8' title 'published weak', \
     '' using 4:(sel('published', 'strong') ? column(5) : NaN) with points pt 11 ps 1.8 lc rgb '#2e8b57' title 'published strong', \
     '' using 4:(sel('published', 'weak') ? column(5) : NaN):(strcol(1).' (weak)') with labels right offset -1.2,0.8 font ',8' tc rgb '#1f5fa8' noenhanced notitle, \
     '' using 4:(sel('published', 'strong') ? column(5) : NaN):(strcol(1).' (strong)') with labels right offset -1.2,-0.8 font ',8' tc rgb '#2e8b57' noenhanced notitle
set output
