# report_gpu_hours.gp - GPU-hours: each published claim beside the same model on the
# same hardware at moebench's best measured MFU, and beside a `moebench project`
# projection of it when one was given (log scale).
#
#   gnuplot -c plots/report_gpu_hours.gp DIR/report_gpu_hours.csv DIR/report_gpu_hours [1|0 1|0]
#
# `moebench report --plot DIR` writes the CSV (benchmarks/report/report_plot.c):
# label, claimed, at_our_mfu, projected (GPU-hours; empty = none), after '#' lines.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/report_gpu_hours.gp REPORT_GPU_HOURS.csv OUTBASE"
	exit status 2
}
datafile = ARG1
outbase = ARG2

set datafile separator ","
set datafile columnheaders
# NOTE: counted outside `stats`, which fails on a CSV without data rows (no chosen
# published run states GPU-hours); such a figure says so instead of failing.
n_rows = int(system(sprintf("grep -v '^#' '%s' | tail -n +2 | grep -c . || true", datafile)))

if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) {
	set terminal pngcairo size 1200,800 enhanced font 'Sans,10'
} else {
	set terminal png size 1200,800 enhanced
}
set output outbase.'.png'
set title 'GPU-hours for the published token budget: claimed, at moebench''s measured MFU, projected' font ',13'
set ylabel 'GPU-hours (log scale)'
set logscale y
set yrange [1e4:1e10]
set format y '10^{%L}'
set xrange [-0.6:n_rows-0.4]
set style fill solid 0.85 border -1
set boxwidth 0.26
set grid ytics lc rgb '#d0d0d0'
set key top center horizontal box opaque
set xtics rotate by -30 left nomirror font ',9' noenhanced
set bmargin 9
set rmargin 10
# ARG3, ARG4: whether the at_our_mfu and projected columns hold any value ("1"), so
# gnuplot is not asked to draw an empty column
has_ours = ARGC >= 3 ? ARG3 eq '1' : 1
has_proj = ARGC >= 4 ? ARG4 eq '1' : 1
cmd = "plot datafile using ($0-0.28):'claimed' with boxes lc rgb '#1f5fa8' title 'claimed (published)'"
if (has_ours) cmd = cmd.", '' using 0:'at_our_mfu' with boxes lc rgb '#c0392b' title 'published model and hardware at moebench''s measured MFU', '' using 0:'at_our_mfu':(sprintf('%.3gM', column('at_our_mfu')/1e6)) with labels offset 0,0.7 font ',8' notitle"
if (has_proj) cmd = cmd.", '' using ($0+0.28):'projected' with boxes lc rgb '#2e8b57' title 'moebench project', '' using ($0+0.28):'projected':(sprintf('%.3gM', column('projected')/1e6)) with labels offset 0,0.7 font ',8' notitle"
cmd = cmd.", '' using 0:(1):xtic(1) with points ps 0 notitle, '' using ($0-0.28):'claimed':(sprintf('%.3gM', column('claimed')/1e6)) with labels offset 0,0.7 font ',8' notitle"
if (n_rows == 0) {
	set label 1 'no published run among those chosen states GPU-hours' at graph 0.5,0.5 center font ',12'
	set xrange [0:1]
	unset xtics
	unset key
	plot 1 with points ps 0 notitle
} else {
	eval cmd
}
set output
