<?php
// The route being migrated: bridge.json now sends /report.php to the
// Express app, so this file is no longer reached. Kept for the "before".
header('Content-Type: application/json');
header('X-Served-By: legacy-php');
echo json_encode(['report' => 'sales', 'total' => 1234, 'source' => 'legacy-php']);
