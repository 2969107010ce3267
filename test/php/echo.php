<?php
// Echo fixture: the response body is php://input, byte for byte
// (empty for multipart/form-data, which PHP parses into $_POST/$_FILES).
// Headers: X-Input-Length, X-Input-Md5, X-Request-Method.
$in = file_get_contents('php://input');
header('Content-Type: application/octet-stream');
header('X-Input-Length: ' . strlen($in));
header('X-Input-Md5: ' . md5($in));
header('X-Request-Method: ' . ($_SERVER['REQUEST_METHOD'] ?? ''));
echo $in;
