<?php
// Status fixture: header("Status: CODE[ REASON]").
//   ?code=204      100..599 (default 200; anything else is 400)
//   ?reason=Text   optional reason phrase
//   ?body=text     body to print; default: none for 1xx/204/304, "status CODE" otherwise
header('Content-Type: text/plain');
$code = (int)($_GET['code'] ?? 200);
if ($code < 100 || $code > 599) {
    http_response_code(400);
    echo "bad code";
    exit;
}
$reason = isset($_GET['reason']) ? preg_replace('/[^\x20-\x7e]/', '', (string)$_GET['reason']) : '';
header('Status: ' . $code . ($reason !== '' ? ' ' . $reason : ''));
if (isset($_GET['body'])) {
    echo $_GET['body'];
} elseif (!($code < 200 || $code === 204 || $code === 304)) {
    echo "status $code";
}
