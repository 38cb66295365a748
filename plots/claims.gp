# claims.gp - published training-cost claims beside moebench's recomputation.
#
#   gnuplot -c plots/claims.gp DIR/claims.csv DIR/claims   # -> DIR/claims.png, .pdf
#
# `moebench claims --plot DIR` writes the CSV (columns described in
# benchmarks/claims/claims_plot.c) and runs this script. Top: GPU-hours as reported, at the
# stated throughput, and at 100% of the dense BF16 peak (log scale), for the runs that
# report GPU-hours and tokens; those rows come first in the CSV. Bottom: the MFU every
# run implies. Lines starting with '#' (provenance) are skipped; empty fields are
# missing values.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/claims.gp CLAIMS.csv OUTBASE"
	exit status 2
}
datafile = ARG1
outbase = ARG2

set datafile separator ","
set datafile columnheaders

# How many leading rows report GPU-hours (the top panel's rows).
stats datafile using "gpu_hours_claimed" nooutput
n_hours = STATS_records
stats datafile using 0 nooutput
n_rows = STATS_records

cairo = strstrt(GPVAL_TERMINALS, " pngcairo ") > 0

# draw renders both panels on the current terminal.
draw = "\
set multiplot layout 2,1 title 'moebench claims: published GPU-hours and MFU beside the recomputation' font ',13'; \
set style fill solid 0.85 border -1; \
set boxwidth 0.26; \
set grid ytics lc rgb '#d0d0d0'; \
set key top left Left reverse samplen 1.5; \
set xtics rotate by -40 left nomirror font ',9'; \
set lmargin 12; set rmargin 20; set bmargin 12; \
set xrange [-0.6:n_hours-0.4]; \
set logscale y; \
set format y '10^{%L}'; \
set ylabel 'GPU-hours'; \
set title 'GPU-hours: as reported, at the stated TFLOP/s per GPU, and at 100% of the BF16 dense peak'; \
plot datafile using ($0-0.28):'gpu_hours_claimed' every ::0::(n_hours-1) with boxes lc rgb '#1f5fa8' title 'reported', \
     '' using 0:'gpu_hours_at_stated_rate' every ::0::(n_hours-1) with boxes lc rgb '#e08a1e' title 'at the stated rate', \
     '' using ($0+0.28):'gpu_hours_at_bf16_peak' every ::0::(n_hours-1) with boxes lc rgb '#8a8a8a' title 'at 100% BF16 MFU', \
     '' using 0:'gpu_hours_claimed':xtic(1) every ::0::(n_hours-1) with points ps 0 notitle, \
     '' using ($0-0.28):'gpu_hours_claimed':(sprintf('%.3gM', column('gpu_hours_claimed')/1e6)) every ::0::(n_hours-1) with labels offset 0,0.7 font ',8' notitle, \
     '' using 0:'gpu_hours_at_stated_rate':(sprintf('%.3gM', column('gpu_hours_at_stated_rate')/1e6)) every ::0::(n_hours-1) with labels offset 0,0.7 font ',8' notitle; \
unset logscale y; \
set format y '%g%%'; \
set xrange [-0.6:n_rows-0.4]; \
set yrange [0:60]; \
set ylabel 'MFU (% of dense peak)'; \
set title 'Implied model FLOPs utilisation (causal model FLOPs, Megatron-LM terms)'; \
plot datafile using ($0-0.28):(100*column('mfu_bf16_from_gpu_hours')) with boxes lc rgb '#1f5fa8' title 'from GPU-hours, BF16 peak', \
     '' using 0:(100*column('mfu_fp8_from_gpu_hours')) with boxes lc rgb '#b03030' title 'from GPU-hours, FP8 peak (FP8 runs)', \
     '' using ($0+0.28):(100*column('mfu_bf16_stated')) with boxes lc rgb '#3a9a4a' title 'stated rate or MFU, BF16 peak', \
     '' using 0:(0):xtic(1) with points ps 0 notitle, \
     '' using ($0-0.28):(100*column('mfu_bf16_from_gpu_hours')):(sprintf('%.1f', 100*column('mfu_bf16_from_gpu_hours'))) with labels offset 0,0.7 font ',8' notitle, \
     '' using 0:(100*column('mfu_fp8_from_gpu_hours')):(sprintf('%.1f', 100*column('mfu_fp8_from_gpu_hours'))) with labels offset 0,0.7 font ',8' notitle, \
     '' using ($0+0.28):(100*column('mfu_bf16_stated')):(sprintf('%.1f', 100*column('mfu_bf16_stated'))) with labels offset 0,0.7 font ',8' notitle; \
unset multiplot"

if (cairo) {
	set terminal pngcairo size 1400,1300 enhanced font 'Sans,10'
} else {
	set terminal png size 1400,1300 enhanced
}
set output outbase.'.png'
eval draw
set output

if (strstrt(GPVAL_TERMINALS, " pdfcairo ") > 0) {
	set terminal pdfcairo size 11in,10.2in enhanced font 'Sans,8'
	set output outbase.'.pdf'
	eval draw
	set output
} else {
	print "claims.gp: no pdfcairo terminal in this gnuplot: ".outbase.".pdf not written"
}
