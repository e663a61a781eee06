/*
 * smaps.c: walking /proc/self/smaps (see smaps.h).
 */
#include "core/smaps.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

int smaps_each(bool (*fn)(const struct smaps_entry *e, void *ud), void *ud)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[4096], path[4096] = "";
    struct smaps_entry e;
    bool have = false, go = true;
    while (go) {
        bool eof = !fgets(line, sizeof line, f);
        uintptr_t a, b;
        char perms[8];
        unsigned maj, min;
        unsigned long long ino;
        int path_at = 0;
        /* a mapping's header ("lo-hi perms offset maj:min inode path");
         * field lines start with a name and a colon */
        bool header = !eof && sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*x %x:%x %llu %n", &a,
                                     &b, perms, &maj, &min, &ino, &path_at) >= 6;
        if (eof || header) {
            if (have)
                go = fn(&e, ud);
            if (eof)
                break;
            memset(&e, 0, sizeof e);
            e.lo = a;
            e.hi = b;
            snprintf(e.perms, sizeof e.perms, "%s", perms);
            e.dev = makedev(maj, min);
            e.inode = ino;
            snprintf(path, sizeof path, "%s", path_at > 0 ? line + path_at : "");
            path[strcspn(path, "\n")] = '\0';
            e.path = path;
            have = true;
            continue;
        }
        unsigned long long kb;
        if (sscanf(line, "Rss: %llu kB", &kb) == 1)
            e.rss = kb * 1024;
        else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
            e.anon_huge = kb * 1024;
        else if (sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1)
            e.file_pmd = kb * 1024;
    }
    fclose(f);
    return 0;
}
