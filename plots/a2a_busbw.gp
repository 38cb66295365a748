# a2a_busbw.gp - bus bandwidth against message size, one line per CSV file (a
# collective, a rank count or a machine each), as nccl-tests' busbw curves are drawn.
#
#   mpirun -np 4 moebench a2a --collective alltoall -b 8 -e 256M -f 2 --format csv > a.csv
#   mpirun -np 4 moebench a2a --collective allreduce -b 8 -e 256M -f 2 --format csv > r.csv
#   gnuplot -c plots/a2a_busbw.gp figures/busbw a.csv r.csv
#
# Each CSV is moebench's export of one sweep: its rows carry size_bytes and busbw_GBps
# (nccl-tests' definitions; a failed check leaves the field empty, which gnuplot skips);
# '#' provenance lines are skipped. The key names each line by its file.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/a2a_busbw.gp OUTBASE SWEEP.csv [SWEEP.csv ...]"
	exit status 2
}
outbase = ARG1
files = ''
do for [i = 2:ARGC] { eval sprintf('files = files." ".ARG%d', i) }

set datafile separator ","
set datafile columnheaders
set datafile missing ''

draw = "\
set title 'bus bandwidth against message size (moebench a2a --collective)' font ',13'; \
set xlabel 'message size (bytes, nccl-tests convention)'; \
set ylabel 'busbw (GB/s)'; \
set logscale x 2; \
set format x '%.0b%B'; \
set grid lc rgb '#e0e0e0'; \
set key outside right top Left reverse samplen 3; \
plot for [f in files] f using 'size_bytes':'busbw_GBps' with linespoints lw 2 pt 7 ps 0.9 title f"

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
	print "a2a_busbw.gp: no pdfcairo terminal in this gnuplot: ".outbase.".pdf not written"
}
