# fp8_accum.gp - DeepSeek-V3's FP8 accumulation claim as a figure: max relative error of
# an FP8 GEMM against K, through Hopper's limited tensor-core accumulator alone, and with
# partial sums promoted to FP32 every N_C elements (DeepSeek-V3 report, sec. 3.3.2).
#
# The CSV comes from the accumulation study (benchmarks/gemm/accum_study.c):
#   moebench gemm --accum-study --accum-csv fp8_accum.csv
# and the figure from the CSV:
#   gnuplot -e "csv='fp8_accum.csv'" plots/fp8_accum.gp              # -> fp8_accum.png
#   gnuplot -e "csv='fp8_accum.csv'; out='fig.png'" plots/fp8_accum.gp
# The CSV's '#' lines (provenance, "# config: ... promote=N ...") are skipped as data;
# its header row names the columns:
#   k,log2_k,nopromo_max_rel_err,nopromo_mean_rel_err,promo_max_rel_err,promo_mean_rel_err

if (!exists("csv")) csv = 'fp8_accum.csv'
if (!exists("out")) out = (strstrt(csv, '.csv') == strlen(csv) - 3) ? csv[1:strlen(csv) - 4] . '.png' : csv . '.png'

# N_C and the configuration line, read from the CSV's provenance
nc = system(sprintf("sed -n 's/^# config:.* promote=\\([0-9]*\\).*/\\1/p' '%s' | head -n 1", csv))
if (strlen(nc) == 0) nc = 'N_C'
cfg = system(sprintf("sed -n 's/^# config: //p' '%s' | head -n 1", csv))

if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
	set terminal pngcairo size 960,620 enhanced font 'Sans,11'
} else {
	set terminal png size 960,620
}
set output out

set datafile separator ','
set datafile commentschars '#'
set title 'FP8 GEMM: relative error vs K, limited accumulator with and without promotion'
set tmargin 6
set bmargin 5
set label 2 cfg at screen 0.5, screen 0.03 center font ',8' noenhanced
set xlabel 'log_2 K  (K on the top axis)'
set link x2
set for [i = 0:24] x2tics add (sprintf('%d', 2**i) i)

set ylabel 'max relative error vs FP64 reference'
set logscale y
set format y '10^{%L}'
set xtics 1
set grid xtics ytics mytics
set key top left box opaque

# DeepSeek-V3's reported point: "maximum relative error of nearly 2%" at K = 4096
set label 1 'DeepSeek-V3 report: ~2% at K=4096' at 12, 0.02 offset 1,-1 font ',9' noenhanced
plot csv using 'log2_k':'nopromo_max_rel_err' with linespoints lw 2 pt 7 lc rgb '#c0392b' \
	     title 'no promotion (limited accumulator only)', \
     ''  using 'log2_k':'promo_max_rel_err' with linespoints lw 2 pt 5 lc rgb '#2471a3' \
	     title sprintf('promotion to FP32 every %s', nc), \
     '+' using (12):(0.02) every ::0::0 with points pt 6 ps 2 lw 2 lc rgb 'black' notitle
