import { notYet } from './not-yet.js';

notYet('m2sh', 'the config tool of the bundled server core (use the real m2sh from Debian mongrel2-core meanwhile)');
