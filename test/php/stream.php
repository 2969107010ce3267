<?php
// Streaming fixture: N lines with flush() + a pause after each one.
//   ?n=5        number of lines (1..100000, default 5)
//   ?delay=100  pause after each line in ms (0..60000, default 100)
//   ?marker=P   optional: append progress to file P ("start PID", "line I" per
//               iteration, "done" at the end) so a test can see whether the
//               worker is still running after the client went away. P must be
//               inside sys_get_temp_dir() (the harness points sys_temp_dir at
//               its private tmp folder, PhpFpm.tmpDir); anything else is 400.
// Output lines: "line 0\n", "line 1\n", ... Needs output_buffering=0.
header('Content-Type: text/plain');
header('X-Accel-Buffering: no');

$n = max(1, min(100000, (int)($_GET['n'] ?? 5)));
$delayMs = max(0, min(60000, (int)($_GET['delay'] ?? 100)));
$marker = null;
if (isset($_GET['marker']) && $_GET['marker'] !== '') {
    $m = (string)$_GET['marker'];
    $base = realpath(sys_get_temp_dir());
    $dir = realpath(dirname($m));
    $name = basename($m);
    $ok = $base !== false && $dir !== false
        && ($dir === $base || strncmp($dir, $base . '/', strlen($base) + 1) === 0)
        && $name !== '' && $name !== '.' && $name !== '..'
        && !is_link($dir . '/' . $name);
    if (!$ok) {
        http_response_code(400);
        echo "marker must be inside ", sys_get_temp_dir(), "\n";
        exit;
    }
    $marker = $dir . '/' . $name;
    file_put_contents($marker, "start " . getmypid() . "\n", FILE_APPEND);
}
while (ob_get_level() > 0) {
    ob_end_flush();
}
for ($i = 0; $i < $n; $i++) {
    echo "line $i\n";
    flush();
    if ($marker !== null) {
        file_put_contents($marker, "line $i\n", FILE_APPEND);
    }
    if ($delayMs > 0) {
        usleep($delayMs * 1000);
    }
}
if ($marker !== null) {
    file_put_contents($marker, "done\n", FILE_APPEND);
}
