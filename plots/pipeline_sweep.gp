# pipeline_sweep.gp - bubble fraction against micro-batches per step, one line per
# pipeline schedule (simulated, points joined), its closed form dashed beside it.
#
#   moebench pipeline --schedule all --pp 8 --sweep 16,24,32,48,64,96,128 --out sweep.csv
#   gnuplot -c plots/pipeline_sweep.gp sweep.csv figures/pipeline_sweep ["title"]
#
# The CSV (columns in benchmarks/pipeline/pipeline_out.h) has one row per (schedule, micro-batches);
# a schedule that rejects a size (DualPipe below 2 x PP, interleaved off a multiple of
# PP) has empty fields there, which gnuplot skips. '#' lines are skipped. The fraction
# is the worst device's bubble / (m (f + b + w)), Megatron's definition.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/pipeline_sweep.gp SWEEP.csv OUTBASE [title]"
	exit status 2
}
datafile = ARG1
outbase = ARG2
title = ARGC >= 3 ? ARG3 : 'pipeline bubble fraction against micro-batches ('.datafile.')'

set datafile separator ","
set datafile columnheaders
set datafile missing ''

names = "gpipe 1f1b interleaved zb-h1 dualpipe dualpipev"
colours = "0x7F7F7F 0x1F77B4 0x2CA02C 0x9467BD 0xD62728 0xFF7F0E"
# point types: schedules with equal fractions (gpipe and 1f1b) stay distinguishable
points = "4 7 5 9 11 13"
pick(s, name) = strcol('schedule') eq name ? column(s) : NaN

draw = "\
set title title font ',13'; \
set xlabel 'micro-batches per step (m)'; \
set ylabel 'bubble fraction: bubble / (m (F+B+W))'; \
set logscale x 2; \
set logscale y; \
set grid lc rgb '#e0e0e0'; \
set key outside right top Left reverse samplen 3; \
plot for [i = 1:words(names)] datafile \
	using 'microbatches':(pick('bubble_fraction', word(names, i))) \
	with linespoints lw 2 pt int(word(points, i)) ps 1.1 lc rgb int(word(colours, i)) \
	title word(names, i), \
     for [i = 1:words(names)] datafile \
	using 'microbatches':(pick('closed_form_fraction', word(names, i))) \
	with lines dt 2 lw 1.5 lc rgb int(word(colours, i)) title word(names, i).' closed form'"

if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) {
	set terminal pngcairo size 1200,700 noenhanced font 'Sans,10'
} else {
	set terminal png size 1200,700 noenhanced
}
set output outbase.'.png'
eval draw
set output

if (strstrt(GPVAL_TERMINALS, " pdfcairo ") > 0) {
	set terminal pdfcairo size 12in,7in noenhanced font 'Sans,10'
	set output outbase.'.pdf'
	eval draw
	set output
} else {
	print "pipeline_sweep.gp: no pdfcairo terminal in this gnuplot: ".outbase.".pdf not written"
}
