# pipeline.gp - a pipeline schedule's timeline, drawn like the DualPipe figure of the
# DeepSeek-V3 report: one row per device (device 0 on top), a coloured box per
# operation labelled with its micro-batch, idle time blank.
#
#   moebench pipeline --schedule dualpipe --pp 8 --microbatches 16 --fb 2 --timeline dp.csv
#   gnuplot -c plots/pipeline.gp dp.csv figures/dualpipe ["title"]   # -> .png and .pdf
#
# Colours: F orange, B (backward for inputs) green, W (backward for weights) blue, BW
# (full backward, B and W in one) deep green; the second chunk of a device (DualPipe's
# reverse direction, DualPipeV's way back up, interleaved's odd chunks) a darker shade.
# An F&B pair is its forward's and its backward's halves inside one black border, as in
# the figure. DualPipe numbers micro-batches within their direction, as the figure does.
# The CSV (columns in benchmarks/pipeline/pipeline_out.h) comes from `moebench pipeline --timeline`,
# simulated, or from `--execute --timeline`, measured; '#' lines are skipped.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/pipeline.gp TIMELINE.csv OUTBASE [title]"
	exit status 2
}
datafile = ARG1
outbase = ARG2
title = ARGC >= 3 ? ARG3 : 'pipeline timeline ('.datafile.')'

set datafile separator ","
set datafile columnheaders

stats datafile using "device" nooutput
ndev = int(STATS_max) + 1
n_ops = STATS_records
stats datafile using "end" nooutput
t_end = STATS_max

# Labels only while boxes are wide enough to hold them.
ops_per_dev = n_ops / ndev
label_font = ops_per_dev <= 48 ? ',9' : ops_per_dev <= 96 ? ',6' : ''
show_labels = ops_per_dev <= 96

# colour of an operation kind k in chunk c
shade(c, light, dark) = (int(c) % 2 == 0) ? light : dark
colour(k, c) = k eq 'F' ? shade(c, 0xF7B06A, 0xD9782A) : \
	       k eq 'B' ? shade(c, 0xA8D88E, 0x6DAF52) : \
	       k eq 'BW' ? shade(c, 0x74B95C, 0x3F8A2C) : \
	       k eq 'W' ? shade(c, 0x9DC6EE, 0x5A8FCB) : 0xBBBBBB
is_fb(k) = k eq 'FB'
mid(a, b) = (a + b) / 2.0
h = 0.38

draw = "\
set title title font ',13'; \
set xlabel 'time (unit of --f; seconds when measured)'; \
set xrange [0:t_end * 1.002]; \
set yrange [ndev - 0.5:-0.5]; \
eval ytic_cmd; \
set grid xtics lc rgb '#e8e8e8'; \
set key outside right top vertical Left reverse samplen 1.5; \
set tics nomirror; \
set style fill solid 1.0 border lc rgb '#ffffff'; \
plot \
  datafile using (mid(column('start'), column('end'))):'device':((column('end') - column('start')) / 2):(h):(colour(strcol('kind'), column('chunk'))) \
	with boxxyerror lc rgb variable notitle, \
  '' using (is_fb(strcol('kind')) ? mid(column('start'), mid(column('start'), column('end'))) : NaN):'device':((column('end') - column('start')) / 4):(h):(colour('F', column('chunk'))) \
	with boxxyerror lc rgb variable notitle, \
  '' using (is_fb(strcol('kind')) ? mid(mid(column('start'), column('end')), column('end')) : NaN):'device':((column('end') - column('start')) / 4):(h):(colour('BW', column('chunk2'))) \
	with boxxyerror lc rgb variable notitle, \
  '' using (is_fb(strcol('kind')) ? mid(column('start'), column('end')) : NaN):'device':((column('end') - column('start')) / 2):(h) \
	with boxxyerror fs empty lc rgb '#000000' lw 2.5 notitle, \
  '' using (show_labels && !is_fb(strcol('kind')) ? mid(column('start'), column('end')) : NaN):'device':(sprintf('%d', column('label'))) \
	with labels font label_font notitle, \
  '' using (show_labels && is_fb(strcol('kind')) ? mid(column('start'), mid(column('start'), column('end'))) : NaN):'device':(sprintf('%d', column('label'))) \
	with labels font label_font notitle, \
  '' using (show_labels && is_fb(strcol('kind')) ? mid(mid(column('start'), column('end')), column('end')) : NaN):'device':(sprintf('%d', column('label2'))) \
	with labels font label_font notitle, \
  NaN with boxes fs solid lc rgb '#F7B06A' title 'F', \
  NaN with boxes fs solid lc rgb '#A8D88E' title 'B', \
  NaN with boxes fs solid lc rgb '#9DC6EE' title 'W', \
  NaN with boxes fs solid lc rgb '#74B95C' title 'B+W (full backward)', \
  NaN with boxes fs empty lc rgb '#000000' lw 2.5 title 'F&B (overlapped pair)', \
  NaN with boxes fs solid lc rgb '#D9782A' title '2nd chunk / reverse direction'"

# one tic per device, device 0 on top
ytic_cmd = 'set ytics ('
do for [d = 0:ndev - 1] {
	ytic_cmd = ytic_cmd.sprintf("%s'Device %d' %d", d > 0 ? ', ' : '', d, d)
}
ytic_cmd = ytic_cmd.')'

height = 140 + 46 * ndev
if (strstrt(GPVAL_TERMINALS, " pngcairo ") > 0) {
	set terminal pngcairo size 1700,height noenhanced font 'Sans,10'
} else {
	set terminal png size 1700,height noenhanced
}
set output outbase.'.png'
eval draw
set output

if (strstrt(GPVAL_TERMINALS, " pdfcairo ") > 0) {
	set terminal pdfcairo size 17in,(height / 100.0)in noenhanced font 'Sans,10'
	set output outbase.'.pdf'
	eval draw
	set output
} else {
	print "pipeline.gp: no pdfcairo terminal in this gnuplot: ".outbase.".pdf not written"
}
