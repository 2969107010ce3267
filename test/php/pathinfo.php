<?php
// PATH_INFO fixture, e.g. /pathinfo.php/a/b?x=1. JSON object; absent keys are null.
header('Content-Type: application/json');
$keys = ['PATH_INFO', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_TRANSLATED', 'PHP_SELF', 'REQUEST_URI', 'DOCUMENT_URI', 'QUERY_STRING'];
$out = [];
foreach ($keys as $k) {
    $out[$k] = $_SERVER[$k] ?? null;
}
echo json_encode($out, JSON_UNESCAPED_SLASHES), "\n";
