# train_loss.gp - training and validation loss against tokens, one pair of lines per
# CSV file (a precision, a preset or a machine each), so BF16 and FP8 runs overlay.
#
#   moebench train --precision bf16 --csv bf16.csv
#   moebench train --precision fp8 --csv fp8.csv
#   gnuplot -c plots/train_loss.gp figures/train_loss bf16.csv fp8.csv
#
# Each CSV is `moebench train --csv`'s: columns step, tokens, train_loss, mtp_loss,
# val_loss, ... after '#' provenance lines (skipped); val_loss is nan between
# validations, which gnuplot skips. Losses are in nats per token (per byte for
# byte-level tokens). Training loss is drawn thin, validation loss with points.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/train_loss.gp OUTBASE RUN.csv [RUN.csv ...]"
	exit status 2
}
outbase = ARG1
files = ''
do for [i = 2:ARGC] { eval sprintf('files = files." ".ARG%d', i) }

set datafile separator ","
set datafile columnheaders
set datafile missing 'nan'

draw = "\
set title 'loss against tokens (moebench train)' font ',13'; \
set xlabel 'tokens'; \
set ylabel 'loss (nats per token)'; \
set format x '%.1s%c'; \
set grid lc rgb '#e0e0e0'; \
set key outside right top Left reverse samplen 3; \
plot for [i = 1:words(files)] word(files, i) using 'tokens':'train_loss' with lines lw 1 lc i title word(files, i).' train', \
     for [i = 1:words(files)] word(files, i) using 'tokens':'val_loss' with linespoints lw 2 pt 7 ps 0.9 lc i title word(files, i).' validation'"

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
	print "train_loss.gp: no pdfcairo terminal in this gnuplot: ".outbase.".pdf not written"
}
