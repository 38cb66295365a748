# report_mfu.gp - MFU against GPUs: moebench's measured runs beside the published runs
# (and any projections), each point named.
#
#   gnuplot -c plots/report_mfu.gp DIR/report_mfu.csv DIR/report_mfu   # -> .png
#
# `moebench report --plot DIR` writes the CSV (benchmarks/report/report_plot.c):
# label, kind (measured|published|projected), gpus, mfu_pct, after '#' provenance
# lines. MFU is against the dense BF16 peak of the run's hardware; a CPU run's against
# the measured peak of a `moebench peak` result (the label of the CSV says which).

if (ARGC < 2) {
	print "usage: gnuplot -c plots/report_mfu.gp REPORT_MFU.csv OUTBASE"
	exit status 2
}
datafile = ARG1
outbase = ARG2

set datafile separator ","
set datafile columnheaders

is(k) = strcol(2) eq k

if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) {
	set terminal pngcairo size 1200,800 enhanced font 'Sans,10'
} else {
	set terminal png size 1200,800 enhanced
}
set output outbase.'.png'
set title 'MFU against GPUs: moebench measured runs beside the published runs' font ',13'
set xlabel 'GPUs (CPU runs: processes), log scale'
set ylabel 'MFU (% of the dense BF16 peak; CPU: of the measured SGEMM peak)'
set logscale x 2
set xrange [0.5:262144]
set yrange [0:70]
set format y '%g%%'
set grid lc rgb '#e0e0e0'
set key top left box opaque
# NOTE: published labels spread over three heights by row and sit left of the points
# below 3,000 GPUs, right of the others: runs at the same GPU count and MFU (Llama 3's
# Table 4 row and its pre-training) would overprint
nudge(y) = y + 1.3 * (int(column(0)) % 3 - 1)
left(k) = is(k) && column(3) < 3000
plot datafile using 3:(is('published') ? column(4) : NaN) with points pt 5 ps 1.6 lc rgb '#1f5fa8' title 'published (results/baselines)', \
     '' using 3:(is('published') && !left('published') ? nudge(column(4)) : NaN):1 with labels left offset 1,0 font ',8' tc rgb '#1f5fa8' noenhanced notitle, \
     '' using 3:(left('published') ? nudge(column(4)) : NaN):1 with labels right offset -1,0 font ',8' tc rgb '#1f5fa8' noenhanced notitle, \
     '' using 3:(is('measured') ? column(4) : NaN) with points pt 7 ps 1.6 lc rgb '#c0392b' title 'moebench, measured', \
     '' using 3:(is('measured') ? column(4) : NaN):1 with labels left offset 1,-0.6 font ',8' tc rgb '#c0392b' noenhanced notitle, \
     '' using 3:(is('projected') ? column(4) : NaN) with points pt 9 ps 1.8 lc rgb '#2e8b57' title 'moebench project', \
     '' using 3:(is('projected') ? column(4) : NaN):1 with labels left offset 1,0.2 font ',8' tc rgb '#2e8b57' noenhanced notitle
set output
