# Chart for docs/benchmarks.md: W1 ns/event against N, W2 ns/timer. Run by compare.sh.
set terminal pngcairo size 1100,450 font ",10" noenhanced
set output outdir.'/chart.png'
set multiplot layout 1,2
set title 'W1 pipe chain: ns per dispatched event (lower is better)'
set logscale x
set xlabel 'socketpairs (100 tokens circulating)'
set ylabel 'ns/event'
set key top left
set grid
plot for [i=2:6] outdir.'/chart.dat' using 1:i with linespoints lw 2 title columnhead(i)
unset logscale x
set title 'W2 timers: ns per timer, schedule + fire (lower is better)'
set xlabel ''
set ylabel 'ns/timer'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set xtics ('(a) 1M already due' 0, '(b) 1M over 50 ms' 1)
set yrange [0:*]
plot for [i=2:6] outdir.'/chart_timers.dat' using i title columnhead(i)
unset multiplot
