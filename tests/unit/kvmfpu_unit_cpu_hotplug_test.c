// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_cpu_hotplug_test: the hotplug tests offline a host CPU only where the user
 * allowed it: the program's --allow-hotplug, or a lab (KVMFPU_LAB set and not empty, as the
 * lab's /init exports it). Anything else is a refusal that says how to allow it. Nothing is
 * offlined here.
 */
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "cpu_hotplug.h"

TEST(allowed)
{
	char why[320] = "";

	ASSERT_EQ(0, unsetenv("KVMFPU_LAB"));
	EXPECT_FALSE(cpu_hotplug_allowed(false, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "pass --allow-hotplug"));
	EXPECT_TRUE(cpu_hotplug_allowed(true, why, sizeof(why)));

	ASSERT_EQ(0, setenv("KVMFPU_LAB", "", 1));
	EXPECT_FALSE(cpu_hotplug_allowed(false, why, sizeof(why)));

	ASSERT_EQ(0, setenv("KVMFPU_LAB", "tcg", 1));
	EXPECT_TRUE(cpu_hotplug_allowed(false, why, sizeof(why)));
}

TEST_HARNESS_MAIN
