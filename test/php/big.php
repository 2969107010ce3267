<?php
// Large deterministic body: ?n=BYTES (default 10485760 = 10 MB, max 512 MB).
// Content: 16-byte records sprintf('%015d', k) . "\n" for k = 0, 1, 2, ...,
// cut at n bytes (see bigBody() in test/support/php-fpm.ts).
//   ?cl=1  also send Content-Length (default: none, FPM/nginx decide framing)
header('Content-Type: application/octet-stream');
$n = (int)($_GET['n'] ?? 10485760);
$n = max(0, min(536870912, $n));
if (!empty($_GET['cl'])) {
    header('Content-Length: ' . $n);
}
$recordsPerChunk = 4096; // 64 KiB per echo
$k = 0;
$left = $n;
while ($left > 0) {
    $chunk = '';
    for ($j = 0; $j < $recordsPerChunk; $j++, $k++) {
        $chunk .= sprintf('%015d', $k) . "\n";
    }
    if (strlen($chunk) > $left) {
        $chunk = substr($chunk, 0, $left);
    }
    echo $chunk;
    $left -= strlen($chunk);
}
