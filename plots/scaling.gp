# scaling.gp - scaling efficiency against ranks from `moebench scale --csv`: one line per
# series, a mode with its layout and what it grows (weak: model FLOP/s per rank at N over
# N0, tokens/s per rank when the model is fixed; strong: T(N0) N0 / (T(N) N)), the ideal
# line at 1 (also Frontier's published weak scaling, arXiv 2312.12705: 100%), and
# Frontier's strong scaling (89% and 87% at 1,024 and 3,072 MI250X) as dotted lines.
#
#   moebench scale --ranks 1,2,4 --layout dp,ep --csv scale.csv
#   gnuplot -c plots/scaling.gp figures/scaling scale.csv
#
# The CSV's columns: mode, ranks, cores_per_rank, tokens_per_s, tokens_per_s_per_rank,
# efficiency, layout, grow, tp, pp, ep, dp, layers, experts, series (the last; a CSV of
# an older moebench without it draws one line per mode). Weak series are solid, strong
# ones dashed. Points where a rank had less than one core are circled: there the ranks
# shared cores and the efficiency measures the machine, not the step.

if (ARGC < 2) {
	print "usage: gnuplot -c plots/scaling.gp OUTBASE SCALE.csv"
	exit status 2
}
outbase = ARG1
csv = ARG2

set datafile separator ","
set datafile columnheaders

# the series in the order of the file (the column 'series', else 'mode')
col = system(sprintf("head -1 '%s' | tr ',' '\\n' | grep -c '^series$'", csv)) + 0 ? 'series' : 'mode'
series = system(sprintf("awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == \"%s\") c = i } " \
	."NR > 1 && !seen[$c]++ { printf \"%%s \", $c }' '%s'", col, csv))
isweak(i) = word(series, i)[1:4] eq 'weak'
dashof(i) = isweak(i) ? 1 : 5
pointof(i) = isweak(i) ? 7 : 5
colors = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #17becf"
colorof(i) = word(colors, (i - 1) % 8 + 1)

draw = "\
set title 'scaling efficiency of the training step (moebench scale)' font ',13'; \
set xlabel 'ranks'; \
set ylabel 'efficiency (1 = ideal)'; \
set logscale x 2; \
set yrange [0:1.2]; \
set grid lc rgb '#e0e0e0'; \
set key outside right top Left reverse samplen 3; \
plot 1 with lines dt 2 lw 2 lc rgb '#555555' title 'ideal (and Frontier weak 100%)', \
     for [i = 1:words(series)] csv using (strcol(col) eq word(series, i) ? column('ranks') : NaN):'efficiency' \
       with linespoints lw 2 dt dashof(i) pt pointof(i) ps 1.2 lc rgb colorof(i) title word(series, i), \
     csv using (column('cores_per_rank') < 1 ? column('ranks') : NaN):'efficiency' with points pt 6 ps 2.5 lc rgb '#cc0000' title 'ranks share cores (< 1 core/rank)', \
     0.89 with lines dt 3 lw 1 lc 2 title 'Frontier strong 89% (gpt-175b, 1,024 GPUs)', \
     0.87 with lines dt 4 lw 1 lc 2 title 'Frontier strong 87% (gpt-1t, 3,072 GPUs)'"

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
	print "scaling.gp: no pdfcairo terminal in this gnuplot: ".outbase.".pdf not written"
}
