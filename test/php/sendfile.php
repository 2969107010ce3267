<?php
// X-Accel-Redirect / X-Sendfile fixture: ?via=accel (default) or ?via=sendfile,
// ?target=/path (default /static.txt). The front end serves the target.
$target = (string)($_GET['target'] ?? '/static.txt');
header('Content-Type: text/plain');
if (($_GET['via'] ?? 'accel') === 'sendfile') {
    header('X-Sendfile: ' . $target);
} else {
    header('X-Accel-Redirect: ' . $target);
}
echo "this body is replaced by the file\n";
