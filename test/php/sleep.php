<?php
// ?ms=1000 (0..60000): sleep, then print "slept MS".
header('Content-Type: text/plain');
$ms = max(0, min(60000, (int)($_GET['ms'] ?? 1000)));
usleep($ms * 1000);
echo "slept $ms";
