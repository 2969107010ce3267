import { notYet } from './not-yet.js';

notYet('m2bridge', 'the bridge daemon (FastCGI, HTTP and in-process app adapters)');
