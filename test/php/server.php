<?php
// Request introspection fixture: JSON with the CGI environment and PHP's parsed
// request data.
//   server  : $_SERVER (FastCGI params + PHP's own keys)
//   headers : getallheaders()
//   get, post, cookie : $_GET, $_POST, $_COOKIE (always JSON objects)
//   files   : $_FILES, each uploaded file annotated with md5 (md5_file of
//             tmp_name, null if not an uploaded file) - arrays (f[]) become lists
//   input   : md5 + length of php://input (empty for multipart/form-data)
header('Content-Type: application/json');

function annotate_file(array $f): array {
    if (is_array($f['tmp_name'] ?? null)) {
        $out = [];
        foreach (array_keys($f['tmp_name']) as $k) {
            $one = [];
            foreach ($f as $prop => $vals) {
                $one[$prop] = is_array($vals) ? ($vals[$k] ?? null) : $vals;
            }
            $out[$k] = annotate_file($one);
        }
        return $out;
    }
    $tmp = (string)($f['tmp_name'] ?? '');
    $f['md5'] = ($tmp !== '' && is_uploaded_file($tmp)) ? md5_file($tmp) : null;
    return $f;
}

$files = [];
foreach ($_FILES as $field => $f) {
    $files[$field] = annotate_file($f);
}

$input = file_get_contents('php://input');
$out = [
    'server' => (object)$_SERVER,
    'headers' => (object)(function_exists('getallheaders') ? getallheaders() : []),
    'get' => (object)$_GET,
    'post' => (object)$_POST,
    'cookie' => (object)$_COOKIE,
    'files' => (object)$files,
    'input' => ['md5' => md5($input), 'length' => strlen($input)],
];
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PARTIAL_OUTPUT_ON_ERROR), "\n";
